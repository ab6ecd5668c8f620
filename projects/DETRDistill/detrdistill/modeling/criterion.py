"""Set-prediction losses of the DETR family (Hungarian-matched classification + box losses)."""

import torch
import torch.distributed as dist
from detectron2.utils import comm
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss

from ..layers import box_cxcywh_to_xyxy
from .class_type import agree_class_type, check_class_type, require_class_type

__all__ = ["SetCriterion", "sigmoid_focal_loss"]

Indices = list[tuple[Tensor, Tensor]]


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """Sigmoid focal loss (Lin et al., 2017), also valid for soft targets in [0, 1].

    ``FL = alpha_t * (1 - p_t)^gamma * BCE(x, t)`` with ``p_t = p t + (1 - p)(1 - t)`` and
    ``alpha_t = alpha t + (1 - alpha)(1 - t)``; ``alpha < 0`` disables the alpha weighting.

    Args:
        inputs: Logits of any shape.
        targets: Tensor of the same shape with values in [0, 1].
        alpha: Weight of positives.
        gamma: Focusing exponent.
        reduction: "none", "mean" or "sum".

    Returns:
        The loss, elementwise or reduced.
    """
    prob = inputs.sigmoid()
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"unknown reduction {reduction!r}")


class SetCriterion(nn.Module):
    """Losses of a DETR-style detector on every decoder layer (and two-stage proposals).

    For each prediction set the matcher assigns queries to targets (unless ``indices`` are
    given), then

    * ``loss_class``: focal variant, sigmoid focal loss against one-hot targets without a
      background column, summed and divided by ``num_boxes`` (detrex takes the mean over queries
      and multiplies by Q, which is the same); softmax variant, cross-entropy over
      ``num_classes + 1`` logits where unmatched queries target the no-object class (index
      ``num_classes``), whose weight is ``eos_coef``, averaged as a weighted mean (DETR).
    * ``loss_bbox``: L1 on matched normalised cxcywh boxes, summed / ``num_boxes``.
    * ``loss_giou``: ``1 - GIoU`` on matched boxes, summed / ``num_boxes``.

    ``num_boxes`` is the number of target boxes summed over all processes, divided by the world
    size (gradients are averaged by DDP) and clamped to at least 1.

    Keys: ``loss_*`` for the last decoder layer, ``loss_*_{l}`` for layer ``l < L - 1``,
    ``loss_*_enc`` for two-stage proposals. Every value is already multiplied by
    ``weight_dict[base_key]``.

    Args:
        num_classes: Number of object classes (without no-object).
        matcher: A :class:`~detrdistill.modeling.matcher.HungarianMatcher` (or any callable
            ``(pred_logits, pred_boxes, targets) -> list[(pred_idx, tgt_idx)]``).
        weight_dict: Weights for ``loss_class``, ``loss_bbox`` and ``loss_giou``.
        loss_class_type: "focal" or "softmax"; None (the default) takes the detector's
            ``model.loss_class_type`` when the detector is built (:meth:`adopt_class_type`), and
            an explicit value is passed on to the matcher (see :mod:`.class_type`).
        eos_coef: Weight of the no-object class (softmax only).
        focal_alpha: Focal loss alpha.
        focal_gamma: Focal loss gamma.
        binary_enc_targets: Train two-stage proposals class-agnostically (all targets labelled
            0, as in Deformable DETR) instead of with the real labels.
    """

    base_keys = ("loss_class", "loss_bbox", "loss_giou")

    def __init__(
        self,
        num_classes: int,
        matcher: nn.Module,
        weight_dict: dict[str, float],
        loss_class_type: str | None = None,
        eos_coef: float = 0.1,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        *,
        binary_enc_targets: bool = False,
    ):
        super().__init__()
        missing = [k for k in self.base_keys if k not in weight_dict]
        if missing:
            raise KeyError(f"weight_dict lacks {missing}")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.loss_class_type = check_class_type(
            loss_class_type, "criterion.loss_class_type", allow_none=True
        )
        if loss_class_type is not None:
            self.adopt_class_type(loss_class_type, source="criterion.loss_class_type")
        self.eos_coef = eos_coef
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.binary_enc_targets = binary_enc_targets
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = eos_coef
        self.register_buffer("class_weight", class_weight, persistent=False)

    def adopt_class_type(self, class_type: str, source: str = "loss_class_type") -> None:
        """Take the class type of the detector that owns this criterion, and pass it on to the
        matcher (if it has one: :meth:`HungarianMatcher.adopt_class_type
        <detrdistill.modeling.matcher.HungarianMatcher.adopt_class_type>`).

        Args:
            class_type: "focal" or "softmax".
            source: the key it comes from, relative to ``model.`` (for error messages).

        Raises:
            ValueError: if this criterion's or its matcher's explicit value differs, naming
                both keys.
        """
        self.loss_class_type = agree_class_type(
            self.loss_class_type, class_type, "criterion.loss_class_type", source
        )
        adopt = getattr(self.matcher, "adopt_class_type", None)
        if adopt is not None:
            adopt(class_type, source, key="criterion.matcher.class_cost_type")

    def get_num_boxes(self, targets: list[dict], device: torch.device) -> float:
        """Average number of target boxes per process, clamped to at least 1."""
        num_boxes = torch.tensor(
            [float(sum(len(t["labels"]) for t in targets))], dtype=torch.float32, device=device
        )
        world_size = comm.get_world_size()
        if world_size > 1 and dist.is_available() and dist.is_initialized():
            dist.all_reduce(num_boxes)
        return max(num_boxes.item() / world_size, 1.0)

    def loss_labels(
        self, pred_logits: Tensor, targets: list[dict], indices: Indices, num_boxes: float
    ) -> Tensor:
        """Classification loss (unweighted).

        Args:
            pred_logits: (B, Q, K) with K = num_classes (focal) or num_classes + 1 (softmax).
            targets: list of B dicts with ``labels`` (n_i,).
            indices: list of B ``(pred_idx, tgt_idx)``.
            num_boxes: Normaliser for the focal variant.

        Returns:
            Scalar tensor.
        """
        bsz, num_queries, num_logits = pred_logits.shape
        device = pred_logits.device
        batch_idx, query_idx = _matched_positions(indices, device)
        matched_labels = torch.cat(
            [t["labels"][j.to(t["labels"].device)] for t, (_, j) in zip(targets, indices)]
        ).to(device=device, dtype=torch.int64)
        target_classes = torch.full(
            (bsz, num_queries), self.num_classes, dtype=torch.int64, device=device
        )
        target_classes[batch_idx, query_idx] = matched_labels

        class_type = require_class_type(self.loss_class_type, "SetCriterion", "loss_class_type")
        if class_type == "softmax":
            return F.cross_entropy(
                pred_logits.transpose(1, 2).float(),
                target_classes,
                weight=self.class_weight.to(device),
            )
        # one-hot with an extra "background" column that is then dropped
        onehot = F.one_hot(target_classes, num_logits + 1)[..., :num_logits]
        loss = sigmoid_focal_loss(
            pred_logits.float(),
            onehot.to(torch.float32),
            alpha=self.focal_alpha,
            gamma=self.focal_gamma,
            reduction="sum",
        )
        return loss / num_boxes

    def loss_boxes(
        self, pred_boxes: Tensor, targets: list[dict], indices: Indices, num_boxes: float
    ) -> dict[str, Tensor]:
        """L1 and GIoU losses on matched boxes (unweighted).

        Args:
            pred_boxes: (B, Q, 4) normalised cxcywh.
            targets: list of B dicts with ``boxes`` (n_i, 4) normalised cxcywh.
            indices: list of B ``(pred_idx, tgt_idx)``.
            num_boxes: Normaliser.

        Returns:
            dict with scalar ``loss_bbox`` and ``loss_giou`` (0 with a graph if nothing matched).
        """
        device = pred_boxes.device
        batch_idx, query_idx = _matched_positions(indices, device)
        src = pred_boxes[batch_idx, query_idx].float()  # (N, 4)
        tgt = torch.cat(
            [t["boxes"][j.to(t["boxes"].device)] for t, (_, j) in zip(targets, indices)]
        ).to(device=device, dtype=torch.float32)
        loss_bbox = F.l1_loss(src, tgt, reduction="sum") / num_boxes
        if src.shape[0] == 0:
            loss_giou = src.sum()  # 0, still connected to the graph
        else:
            loss_giou = generalized_box_iou_loss(
                box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt), reduction="sum"
            )
            loss_giou = loss_giou / num_boxes
        return {"loss_bbox": loss_bbox, "loss_giou": loss_giou}

    def compute(
        self,
        pred_logits: Tensor,
        pred_boxes: Tensor,
        targets: list[dict],
        num_boxes: float,
        indices: Indices | None = None,
        suffix: str = "",
    ) -> tuple[dict[str, Tensor], Indices]:
        """Match (unless ``indices`` are given) and compute the weighted losses of one set.

        Args:
            pred_logits: (B, Q, K).
            pred_boxes: (B, Q, 4).
            targets: list of B target dicts.
            num_boxes: Normaliser.
            indices: Optional precomputed assignment.
            suffix: Appended to every loss key.

        Returns:
            tuple: weighted losses and the indices used.
        """
        if indices is None:
            indices = self.matcher(pred_logits, pred_boxes, targets)
        if len(indices) != len(targets):
            raise ValueError(f"{len(indices)} assignments for {len(targets)} images")
        raw = {"loss_class": self.loss_labels(pred_logits, targets, indices, num_boxes)}
        raw.update(self.loss_boxes(pred_boxes, targets, indices, num_boxes))
        losses = {k + suffix: v * self.weight_dict[k] for k, v in raw.items()}
        return losses, indices

    def forward(
        self, outputs, targets: list[dict], indices: list[Indices] | None = None
    ) -> tuple[dict[str, Tensor], list[Indices]]:
        """
        Args:
            outputs: a ``DecoderOutputs``-like object with ``pred_logits`` (L, B, Q, K),
                ``pred_boxes`` (L, B, Q, 4) and optional ``enc_logits`` (B, Q', K) /
                ``enc_boxes`` (B, Q', 4) (absent or None without two-stage proposals).
            targets: list of B dicts with ``labels`` (n_i,) int64 and ``boxes`` (n_i, 4)
                normalised cxcywh.
            indices: Optional list of L per-layer assignments (list of B ``(pred_idx,
                tgt_idx)``) used instead of matching. Proposals are always matched.

        Returns:
            tuple: weighted loss dict and the per-layer assignments (list of L lists of B
            ``(pred_idx, tgt_idx)``; the last entry belongs to the last layer).
        """
        pred_logits, pred_boxes = outputs.pred_logits, outputs.pred_boxes
        num_layers = pred_logits.shape[0]
        if indices is not None and len(indices) != num_layers:
            raise ValueError(f"indices has {len(indices)} layers, outputs have {num_layers}")
        num_boxes = self.get_num_boxes(targets, pred_logits.device)

        if indices is None and hasattr(self.matcher, "match_layers"):
            indices = self.matcher.match_layers(pred_logits, pred_boxes, targets)  # one solve

        losses, all_indices = {}, []
        for layer in range(num_layers):
            suffix = "" if layer == num_layers - 1 else f"_{layer}"
            layer_losses, layer_indices = self.compute(
                pred_logits[layer],
                pred_boxes[layer],
                targets,
                num_boxes,
                indices=None if indices is None else indices[layer],
                suffix=suffix,
            )
            losses.update(layer_losses)
            all_indices.append(layer_indices)

        enc_logits = getattr(outputs, "enc_logits", None)
        if enc_logits is not None:
            enc_targets = targets
            if self.binary_enc_targets:
                enc_targets = [{**t, "labels": torch.zeros_like(t["labels"])} for t in targets]
            enc_losses, _ = self.compute(
                enc_logits, outputs.enc_boxes, enc_targets, num_boxes, suffix="_enc"
            )
            losses.update(enc_losses)
        return losses, all_indices

    def denoising_losses(
        self, outputs, targets: list[dict], assignment: Indices, num_groups: int
    ) -> dict[str, Tensor]:
        """Losses of denoising queries (DN-DETR, DINO) under their known assignment.

        The queries in ``assignment`` are supervised by the ground truth they were noised from,
        with the same class / L1 / GIoU losses and weights as the matched queries; every other
        query of the group (DINO's negatives, padding) targets "no object". The normaliser is
        ``num_boxes * num_groups`` (each box has one positive per denoising group).

        Args:
            outputs: ``DecoderOutputs``-like with ``pred_logits`` (L, B, Q, K) and
                ``pred_boxes`` (L, B, Q, 4) of the denoising group.
            targets: list of B target dicts.
            assignment: per image ``(query idx, gt idx)``, the same for every layer.
            num_groups: number of denoising groups.

        Returns:
            weighted losses ``loss_*_dn`` (last layer) and ``loss_*_dn_{l}`` (layer l < L - 1).
        """
        pred_logits, pred_boxes = outputs.pred_logits, outputs.pred_boxes
        num_layers = pred_logits.shape[0]
        num_boxes = self.get_num_boxes(targets, pred_logits.device) * num_groups
        losses = {}
        for layer in range(num_layers):
            suffix = "_dn" if layer == num_layers - 1 else f"_dn_{layer}"
            layer_losses, _ = self.compute(
                pred_logits[layer],
                pred_boxes[layer],
                targets,
                num_boxes,
                indices=assignment,
                suffix=suffix,
            )
            losses.update(layer_losses)
        return losses

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, loss_class_type={self.loss_class_type!r}, "
            f"weight_dict={self.weight_dict}"
        )


def _matched_positions(indices: Indices, device: torch.device) -> tuple[Tensor, Tensor]:
    """Flatten per-image assignments into (batch_idx, query_idx), each (N,) on ``device``."""
    batch_idx = torch.cat(
        [torch.full((len(src),), i, dtype=torch.int64) for i, (src, _) in enumerate(indices)]
    )
    query_idx = torch.cat([src.to("cpu", torch.int64) for src, _ in indices])
    return batch_idx.to(device), query_idx.to(device)
