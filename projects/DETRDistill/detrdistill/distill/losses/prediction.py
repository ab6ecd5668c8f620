"""Distillation of class and box predictions on given (student, teacher) query pairs."""

from __future__ import annotations

import torch
import torch.distributed as dist
from detectron2.utils import comm
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss

from ...layers import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh
from ...modeling.class_type import check_class_type
from ..matching import class_probabilities

__all__ = ["PredictionDistillation", "average_count", "gather_pairs", "clamp_boxes_to_image"]

CLASS_LOSSES = ("bce", "binary_kl")

Pairs = list[tuple[Tensor, Tensor]]


def average_count(count: int | float, device: torch.device) -> float:
    """A per-process normaliser: ``count`` summed over processes / world size, clamped >= 1.

    Same convention as ``SetCriterion.get_num_boxes`` (DDP averages the gradients).
    """
    total = torch.tensor([float(count)], dtype=torch.float32, device=device)
    world_size = comm.get_world_size()
    if world_size > 1 and dist.is_available() and dist.is_initialized():
        dist.all_reduce(total)
    return max(total.item() / world_size, 1.0)


def clamp_boxes_to_image(boxes: Tensor) -> Tensor:
    """Clip normalised cxcywh boxes to the image in xyxy (the official DETRDistill code clamps
    the teacher's boxes to the image before using them as targets).

    Args:
        boxes: (..., 4) normalised cxcywh.

    Returns:
        (..., 4) normalised cxcywh whose xyxy corners lie in [0, 1].
    """
    return box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(boxes).clamp(0.0, 1.0))


def gather_pairs(pairs: Pairs, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Flatten per-image pairs into ``(batch_idx, student_idx, teacher_idx)``, each (N,)."""
    if not pairs:
        empty = torch.empty(0, dtype=torch.int64, device=device)
        return empty, empty, empty
    batch = torch.cat(
        [torch.full((len(s),), b, dtype=torch.int64) for b, (s, _) in enumerate(pairs)]
    )
    s_idx = torch.cat([s.to("cpu", torch.int64) for s, _ in pairs])
    t_idx = torch.cat([t.to("cpu", torch.int64) for _, t in pairs])
    return batch.to(device), s_idx.to(device), t_idx.to(device)


class PredictionDistillation(nn.Module):
    """Class + box distillation on matched (student query, teacher query) pairs of one layer.

    For N pairs (normaliser ``N`` averaged over processes and clamped >= 1), each component
    multiplied by its weight:

    * ``class``, focal (sigmoid) student: soft-target BCE-with-logits of ``s / T`` against the
      teacher's foreground probabilities at temperature T (sigmoid, or softmax without the
      no-object column for a softmax teacher), summed over classes, times ``T^2``, divided by
      N. ``class_loss="bce"`` reports it as is (the official DETRDistill value);
      ``"binary_kl"`` subtracts the targets' entropy (same gradient, 0 when the student
      reproduces the teacher). Softmax student and softmax teacher:
      ``KL(softmax(t / T) || softmax(s / T)) * T^2`` over all K + 1 outputs. A softmax student
      cannot learn from a focal teacher (no no-object probability): ValueError.
    * ``bbox``: L1 summed over the 4 normalised cxcywh coordinates; ``giou``: ``1 - GIoU``
      (xyxy); summed over the pairs that carry a box term (all, or those kept by ``box_mask``)
      and divided by their number. With ``weight_by_teacher_confidence`` each pair's box terms
      are multiplied by the teacher's max foreground probability (T = 1) first.

    Teacher tensors are detached. After each call ``last_counts`` holds the number of pairs
    behind each component (for :class:`~detrdistill.distill.losses.base.EmptyTermMonitor`).

    Args:
        class_weight: Weight of the class term.
        bbox_weight: Weight of the L1 term.
        giou_weight: Weight of the GIoU term.
        temperature: Softening temperature T > 0 of the class term.
        class_loss: "bce" or "binary_kl" (focal students; see above).
        weight_by_teacher_confidence: Weight box terms by the teacher's confidence.
    """

    def __init__(
        self,
        *,
        class_weight: float = 1.0,
        bbox_weight: float = 5.0,
        giou_weight: float = 2.0,
        temperature: float = 1.0,
        class_loss: str = "bce",
        weight_by_teacher_confidence: bool = False,
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if class_loss not in CLASS_LOSSES:
            raise ValueError(f"class_loss must be one of {CLASS_LOSSES}, got {class_loss!r}")
        self.class_weight = class_weight
        self.bbox_weight = bbox_weight
        self.giou_weight = giou_weight
        self.temperature = temperature
        self.class_loss = class_loss
        self.weight_by_teacher_confidence = weight_by_teacher_confidence
        self.last_counts: dict[str, int] = {}

    def class_loss_sum(
        self, student_logits: Tensor, teacher_logits: Tensor, student_type: str, teacher_type: str
    ) -> Tensor:
        """Summed class distillation over N pairs (not yet normalised or weighted).

        Args:
            student_logits: (N, K_s) student logits of the pairs.
            teacher_logits: (N, K_t) teacher logits of the pairs.
            student_type: "focal" or "softmax".
            teacher_type: "focal" or "softmax".

        Returns:
            Scalar tensor.
        """
        temp = self.temperature
        s = student_logits.float() / temp
        t = teacher_logits.detach().float() / temp
        if student_type == "softmax":
            if teacher_type != "softmax":
                raise ValueError(
                    "a softmax (no-object) student cannot be distilled from a focal teacher: "
                    "the teacher has no no-object probability; use a focal student or a softmax "
                    "teacher"
                )
            if s.shape[-1] != t.shape[-1]:
                raise ValueError(
                    f"student has {s.shape[-1]} logits, teacher {t.shape[-1]}; class sets differ"
                )
            kl = F.kl_div(s.log_softmax(-1), t.log_softmax(-1), reduction="sum", log_target=True)
            return kl * temp**2
        target = class_probabilities(t, teacher_type)
        if s.shape[-1] != target.shape[-1]:
            raise ValueError(
                f"focal student has {s.shape[-1]} classes but the {teacher_type} teacher predicts "
                f"{target.shape[-1]} foreground classes"
            )
        loss = F.binary_cross_entropy_with_logits(s, target, reduction="sum")
        if self.class_loss == "binary_kl":  # minus the targets' entropy: same gradient
            entropy = -(
                torch.special.xlogy(target, target) + torch.special.xlogy(1 - target, 1 - target)
            )
            loss = loss - entropy.sum()
        return loss * temp**2

    def forward_pairs(
        self,
        student_logits: Tensor,
        student_boxes: Tensor,
        teacher_logits: Tensor,
        teacher_boxes: Tensor,
        pairs: Pairs,
        student_class_type: str,
        teacher_class_type: str,
        box_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Distill one decoder layer on the given pairs.

        Args:
            student_logits: (B, Qs, K_s) student logits.
            student_boxes: (B, Qs, 4) normalised cxcywh.
            teacher_logits: (B, Qt, K_t) teacher logits.
            teacher_boxes: (B, Qt, 4) normalised cxcywh.
            pairs: B tuples ``(student_idx, teacher_idx)`` of equal-length int64 tensors.
            student_class_type: "focal" or "softmax".
            teacher_class_type: "focal" or "softmax".
            box_mask: Optional (B, Qt) bool; only pairs whose teacher prediction is True get
                box terms (e.g. confident teacher predictions).

        Returns:
            dict with weighted scalar ``class``, ``bbox`` and ``giou`` (zeros connected to the
            student graph when there are no pairs).
        """
        check_class_type(student_class_type, "student_class_type")
        check_class_type(teacher_class_type, "teacher_class_type")
        if len(pairs) != student_logits.shape[0]:
            raise ValueError(f"{len(pairs)} pair lists for a batch of {student_logits.shape[0]}")
        device = student_logits.device
        batch, s_idx, t_idx = gather_pairs(pairs, device)
        num_pairs_local = len(batch)
        num_pairs = average_count(num_pairs_local, device)

        class_sum = self.class_loss_sum(
            student_logits[batch, s_idx],
            teacher_logits[batch, t_idx],
            student_class_type,
            teacher_class_type,
        )
        if box_mask is not None:
            keep = box_mask.to(device)[batch, t_idx]
            batch, s_idx, t_idx = batch[keep], s_idx[keep], t_idx[keep]
        self.last_counts = {"class": int(num_pairs_local), "bbox": len(batch), "giou": len(batch)}
        num_box_pairs = average_count(len(batch), device)
        src = student_boxes[batch, s_idx].float()
        tgt = teacher_boxes[batch, t_idx].detach().float()
        l1 = (src - tgt).abs().sum(-1)  # (N,)
        giou = (
            generalized_box_iou_loss(
                box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt), reduction="none"
            )
            if len(src)
            else src.sum(-1)
        )
        if self.weight_by_teacher_confidence:
            conf = class_probabilities(
                teacher_logits[batch, t_idx].detach().float(), teacher_class_type
            ).amax(-1)
            l1, giou = l1 * conf, giou * conf
        # ``+ 0 * sum`` keeps every component attached to the student graph even when empty.
        anchor = 0.0 * (student_logits.sum() + student_boxes.sum())
        return {
            "class": self.class_weight * class_sum / num_pairs + anchor,
            "bbox": self.bbox_weight * l1.sum() / num_box_pairs + anchor,
            "giou": self.giou_weight * giou.sum() / num_box_pairs + anchor,
        }

    def forward(self, *args, **kwargs) -> dict[str, Tensor]:
        """Same as :meth:`forward_pairs` (this module is a building block of the matching
        losses, not a wrapper-level loss)."""
        return self.forward_pairs(*args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"class_weight={self.class_weight}, bbox_weight={self.bbox_weight}, "
            f"giou_weight={self.giou_weight}, temperature={self.temperature}, "
            f"class_loss={self.class_loss!r}, "
            f"weight_by_teacher_confidence={self.weight_by_teacher_confidence}"
        )
