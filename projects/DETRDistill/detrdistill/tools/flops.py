"""Parameter and FLOP counts of DETR-family detectors (fvcore).

FLOPs are counted by ``fvcore.nn.FlopCountAnalysis`` on ``DETRBase.run`` (backbone, input
projection, encoder, decoder and heads; the pixel normalisation before it and the top-k /
rescaling after it are not counted) for one image in eval mode. fvcore counts one fused
multiply-add as one flop, as detectron2 and the DETR papers do. fvcore has handles for
convolutions, matrix products, norms and ``grid_sample`` (the pure-PyTorch deformable
attention); ``scaled_dot_product_attention`` gets one here (``Q K^T`` and ``A V``:
``L * S * (E + Ev)`` per batch element and head). Operators without a handle (element-wise ops,
softmax, top-k, ...) are not counted and are reported by name.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import torch
from detectron2.structures import ImageList
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import Tensor, nn

__all__ = ["FlopReport", "RunOutputs", "count_flops", "parameter_counts", "sdpa_flop_jit"]


class RunOutputs(nn.Module):
    """Expose ``detector.run`` on a normalised image tensor as a traceable tensor function.

    ``forward(images (B, 3, H, W)) -> (pred_logits (L, B, Q, K), pred_boxes (L, B, Q, 4))``.
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        sizes = [tuple(images.shape[-2:])] * images.shape[0]
        output = self.detector.run(ImageList(images, sizes))
        return output.decoder.pred_logits, output.decoder.pred_boxes


def sdpa_flop_jit(inputs: list, outputs: list) -> int:
    """fvcore handle of ``aten::scaled_dot_product_attention`` (multiply-adds).

    ``q`` (..., L, E), ``k`` (..., S, E), ``v`` (..., S, Ev): ``prod(...) * L * S * (E + Ev)``.
    """
    query, key, value = (get_shape(v) for v in inputs[:3])
    batch = 1
    for size in query[:-2]:
        batch *= size
    return batch * query[-2] * key[-2] * (query[-1] + value[-1])


@dataclass
class FlopReport:
    """Result of :func:`count_flops`.

    Attributes:
        total: flops (multiply-adds) of one forward pass.
        by_module: flops per top-level child module of the detector, and ``"(own)"`` for the
            operations of the detector's own methods (outside any child module).
        unsupported: operator name -> number of calls that were not counted.
        input_shape: (B, 3, H, W) of the dummy input.
    """

    total: int
    by_module: dict[str, int]
    unsupported: Counter = field(default_factory=Counter)
    input_shape: tuple[int, ...] = ()

    @property
    def gflops(self) -> float:
        return self.total / 1e9

    def unsupported_summary(self, limit: int = 8) -> str:
        """``"aten::mul x57, aten::add x42, ..."`` (most frequent first)."""
        items = [f"{name} x{count}" for name, count in self.unsupported.most_common(limit)]
        if len(self.unsupported) > limit:
            items.append(f"+{len(self.unsupported) - limit} more op types")
        return ", ".join(items) if items else "none"


@torch.no_grad()
def count_flops(
    detector: nn.Module, height: int, width: int, device: torch.device | str = "cpu"
) -> FlopReport:
    """FLOPs of ``detector.run`` on one dummy (1, 3, height, width) image in eval mode.

    The detector's training mode is restored afterwards. Tracer and fvcore warnings are
    silenced; the operators fvcore could not count are returned in the report.
    """
    was_training = detector.training
    detector.eval()
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, height, width, generator=generator).to(device)
    wrapper = RunOutputs(detector)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(wrapper, (image,))
            analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            total = int(analysis.total())
            per_module = analysis.by_module()
            unsupported = Counter(analysis.unsupported_ops())
    finally:
        detector.train(was_training)
    by_module = {
        name: int(per_module.get(f"detector.{name}", 0)) for name, _ in detector.named_children()
    }
    outside = total - sum(by_module.values())
    if outside:
        by_module["(own)"] = outside  # ops of the detector's own methods (query selection, ...)
    return FlopReport(total, by_module, unsupported, tuple(image.shape))


def _count(parameters) -> tuple[int, int]:
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    return total, trainable


def parameter_counts(module: nn.Module) -> dict:
    """Parameters of ``module``: total, trainable and per top-level child module.

    Shared parameters (e.g. class heads shared across decoder layers) are counted once, as in
    ``sum(p.numel() for p in module.parameters())``.

    Returns:
        ``{"total", "trainable", "by_module": {child: {"total", "trainable"}}}``; parameters
        held directly by ``module`` appear under ``"(own)"``.
    """
    total, trainable = _count(module.parameters())
    by_module = {}
    for name, child in module.named_children():
        child_total, child_trainable = _count(child.parameters())
        by_module[name] = {"total": child_total, "trainable": child_trainable}
    own_total, own_trainable = _count(module.parameters(recurse=False))
    if own_total:
        by_module["(own)"] = {"total": own_total, "trainable": own_trainable}
    return {"total": total, "trainable": trainable, "by_module": by_module}
