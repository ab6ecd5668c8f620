"""DETRDistill (b): target-aware feature distillation with teacher-query masks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ...layers import box_cxcywh_to_xyxy, box_iou
from ...modeling.outputs import EncoderOutputs
from ..inputs import DistillationInputs
from ..matching import class_probabilities

__all__ = ["TargetAwareFeatureDistillation", "query_quality_scores", "target_aware_masks"]

FEATURE_SOURCES = ("input", "memory")
TEACHER_LAYERS = ("all", "last")


def query_quality_scores(
    probs: Tensor, boxes: Tensor, targets: list[dict], top_k: int
) -> tuple[Tensor, Tensor]:
    """Top-K (query, class) entries of one teacher layer and their quality scores.

    ``w_j = p_j * max_g IoU(box_j, gt_g)`` (plain IoU, xyxy); ``w_j = p_j`` for an image without
    ground truth. A query appears once per selected class.

    Args:
        probs: (B, Q, C) teacher foreground probabilities.
        boxes: (B, Q, 4) teacher boxes, normalised cxcywh.
        targets: B dicts with ``boxes`` (n_i, 4) normalised cxcywh.
        top_k: Entries per image (capped at Q * C).

    Returns:
        tuple: query indices (B, K') int64 and scores (B, K') float, K' = min(top_k, Q * C).
    """
    bsz, num_queries, num_classes = probs.shape
    k = min(top_k, num_queries * num_classes)
    values, flat = probs.flatten(1).topk(k, dim=1)
    query_idx = torch.div(flat, num_classes, rounding_mode="floor")
    scores = []
    for b in range(bsz):
        gt = targets[b]["boxes"].to(boxes.device, torch.float32)
        if len(gt) == 0:
            scores.append(values[b])
            continue
        selected = box_cxcywh_to_xyxy(boxes[b, query_idx[b]].float())
        iou = box_iou(selected, box_cxcywh_to_xyxy(gt)).amax(-1)
        scores.append(values[b] * iou)
    return query_idx, torch.stack(scores)


def target_aware_masks(
    queries: Tensor,
    scores: Tensor,
    features: Sequence[Tensor],
    padding: Sequence[Tensor],
    floor: float,
) -> list[Tensor]:
    """Per level mask ``M = clamp(A, min=floor) / max_valid clamp(A, min=floor)``, 0 on padding.

    ``A(h, w) = sum_j w_j cos(q_j, F(h, w))``.

    Args:
        queries: (B, K, D) selected teacher query vectors.
        scores: (B, K) their quality scores w_j.
        features: per level (B, D, H, W) teacher features.
        padding: per level (B, H, W) bool, True on padding.
        floor: Lower clamp of A before normalisation (> 0).

    Returns:
        per level (B, H, W) masks, no gradient.
    """
    with torch.no_grad():
        # sum_j w_j cos(q_j, f) = (sum_j w_j q_j / |q_j|) . f / |f|
        weighted = (scores.unsqueeze(-1) * F.normalize(queries.float(), dim=-1)).sum(1)  # (B, D)
        masks = []
        for feat, pad in zip(features, padding):
            affinity = torch.einsum("bd,bdhw->bhw", weighted, F.normalize(feat.float(), dim=1))
            affinity = affinity.clamp(min=floor).masked_fill(pad, 0.0)
            peak = affinity.flatten(1).amax(1).clamp(min=floor)  # floor if all padding
            masks.append(affinity / peak.view(-1, 1, 1))
    return masks


def _level_features(encoder: EncoderOutputs, source: str) -> tuple[list[Tensor], list[Tensor]]:
    """Per level (B, D, H, W) features and (B, H, W) padding masks of one model."""
    if source == "input":
        return list(encoder.features), list(encoder.masks)
    bsz, _, dim = encoder.memory.shape
    sizes = [(int(h), int(w)) for h, w in encoder.spatial_shapes.tolist()]
    counts = [h * w for h, w in sizes]
    if sum(counts) != encoder.memory.shape[1]:
        raise ValueError(
            f"memory has {encoder.memory.shape[1]} tokens but spatial_shapes {sizes} "
            f"sum to {sum(counts)}"
        )
    feats = [
        m.transpose(1, 2).reshape(bsz, dim, h, w)
        for m, (h, w) in zip(encoder.memory.split(counts, 1), sizes)
    ]
    pads = [m.reshape(bsz, h, w) for m, (h, w) in zip(encoder.memory_mask.split(counts, 1), sizes)]
    return feats, pads


def _per_level(value: int | Sequence[int], num_levels: int, name: str) -> list[int]:
    if isinstance(value, int):
        return [value] * num_levels
    value = list(value)
    if len(value) != num_levels:
        raise ValueError(f"{name} has {len(value)} entries for num_levels={num_levels}")
    return value


class TargetAwareFeatureDistillation(nn.Module):
    """Feature imitation weighted by teacher-query/feature similarity (DETRDistill (b)).

    For each selected teacher decoder layer, the top-K (query, class) entries of every image
    are scored ``w_j = p_j * max IoU(box_j, GT)`` and their decoder hidden states ``q_j`` build
    a per-level mask from ``A = sum_j w_j cos(q_j, F_T)`` (:func:`target_aware_masks`).
    Padding positions get M = 0 (the official code covers padding; not reproduced).

    Loss per level, paper intent (default): ``sum M (adapt(F_S) - F_T)^2 / (sum M * C_T)``,
    i.e. a mask-weighted mean squared error; summed over levels and averaged over the
    selected teacher layers. ``official_squared_mask=True`` gives the official code's
    ``mean((M F_T - M F_S)^2)`` over B*C*H*W (weight M^2), summed over levels and over the
    selected teacher layers.

    Adapters: one 1x1 conv per level from student to teacher channels where they differ (the
    only trainable parameters of this module); identity elsewhere.

    Args:
        student_channels: Student feature channels (int or one per level).
        teacher_channels: Teacher feature channels (int or one per level); must equal the
            teacher's decoder hidden size (queries and features are compared by cosine).
        num_levels: Number of feature levels.
        top_k: (query, class) entries per image and teacher layer.
        feature_source: "input" (transformer inputs, ``EncoderOutputs.features``, as in the
            official code) or "memory" (encoder output reshaped per level).
        teacher_layers: "all" teacher decoder layers (official) or only the "last".
        mask_floor: Lower clamp of the affinity before normalisation.
        official_squared_mask: Use the official loss form (see above).

    Returns from ``forward``: dict with ``feature``.
    """

    needs_attention = False
    needs_teacher_queries = False
    needs_teacher_assignment = False

    def __init__(
        self,
        *,
        student_channels: int | Sequence[int],
        teacher_channels: int | Sequence[int],
        num_levels: int,
        top_k: int = 100,
        feature_source: str = "input",
        teacher_layers: str = "all",
        mask_floor: float = 0.01,
        official_squared_mask: bool = False,
    ):
        super().__init__()
        if feature_source not in FEATURE_SOURCES:
            raise ValueError(
                f"feature_source must be one of {FEATURE_SOURCES}, got {feature_source!r}"
            )
        if teacher_layers not in TEACHER_LAYERS:
            raise ValueError(
                f"teacher_layers must be one of {TEACHER_LAYERS}, got {teacher_layers!r}"
            )
        if num_levels < 1 or top_k < 1 or mask_floor <= 0:
            raise ValueError("num_levels and top_k must be >= 1 and mask_floor > 0")
        self.student_channels = _per_level(student_channels, num_levels, "student_channels")
        self.teacher_channels = _per_level(teacher_channels, num_levels, "teacher_channels")
        self.num_levels = num_levels
        self.top_k = top_k
        self.feature_source = feature_source
        self.teacher_layers = teacher_layers
        self.mask_floor = mask_floor
        self.official_squared_mask = official_squared_mask
        self.adapters = nn.ModuleList(
            nn.Conv2d(s, t, kernel_size=1) if s != t else nn.Identity()
            for s, t in zip(self.student_channels, self.teacher_channels)
        )

    def _check_features(self, student: list[Tensor], teacher: list[Tensor]) -> None:
        if len(student) != len(teacher) or len(teacher) != self.num_levels:
            raise ValueError(
                f"feature distillation needs {self.num_levels} levels; the student has "
                f"{len(student)} ({[tuple(f.shape) for f in student]}) and the teacher "
                f"{len(teacher)} ({[tuple(f.shape) for f in teacher]})"
            )
        for lvl, (fs, ft, cs, ct) in enumerate(
            zip(student, teacher, self.student_channels, self.teacher_channels)
        ):
            if fs.shape[0] != ft.shape[0] or fs.shape[2:] != ft.shape[2:]:
                raise ValueError(
                    f"level {lvl}: student feature {tuple(fs.shape)} and teacher feature "
                    f"{tuple(ft.shape)} differ in batch or spatial size"
                )
            if fs.shape[1] != cs or ft.shape[1] != ct:
                raise ValueError(
                    f"level {lvl}: expected student/teacher channels {cs}/{ct}, got student "
                    f"{tuple(fs.shape)} and teacher {tuple(ft.shape)}"
                )

    def level_loss(self, error: Tensor, mask: Tensor, channels: int) -> Tensor:
        """Masked imitation loss of one level.

        Args:
            error: (B, H, W) squared error summed over channels,
                ``sum_c (adapt(F_S) - F_T)^2``; it does not depend on the mask, so it is
                computed once per level for all teacher layers.
            mask: (B, H, W) mask.
            channels: C, the teacher's channels.

        Returns:
            Scalar tensor: ``sum M e / (sum M * C)`` (paper intent), or with
            ``official_squared_mask`` the official ``mean((M F_S - M F_T)^2)`` over B*C*H*W,
            i.e. ``sum M^2 e / (B C H W)``.
        """
        if self.official_squared_mask:
            return (error * mask.pow(2)).sum() / (error.numel() * channels)
        return (error * mask).sum() / (mask.sum() * channels).clamp(min=1e-6)

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        s_feats, _ = _level_features(inputs.student.encoder, self.feature_source)
        t_feats, t_pads = _level_features(inputs.teacher.encoder, self.feature_source)
        t_feats = [f.detach() for f in t_feats]
        self._check_features(s_feats, t_feats)
        adapted = [adapter(f) for adapter, f in zip(self.adapters, s_feats)]

        decoder = inputs.teacher.decoder
        if (
            decoder.hidden_states.shape[-1] != self.teacher_channels[0]
            or len(set(self.teacher_channels)) != 1
        ):
            raise ValueError(
                f"teacher decoder hidden size {decoder.hidden_states.shape[-1]} must equal the "
                f"teacher feature channels {self.teacher_channels} (cosine of query and feature)"
            )
        errors = [
            (fs.float() - ft.float()).pow(2).sum(1) for fs, ft in zip(adapted, t_feats)
        ]  # per level (B, H, W)
        layers = range(decoder.num_layers) if self.teacher_layers == "all" else [-1]
        total = adapted[0].new_zeros(()).float()
        for t in layers:
            probs = class_probabilities(
                decoder.pred_logits[t].detach().float(), inputs.teacher_class_type
            )
            query_idx, scores = query_quality_scores(
                probs, decoder.pred_boxes[t].detach(), inputs.targets, self.top_k
            )
            hidden = decoder.hidden_states[t].detach()
            queries = torch.gather(
                hidden, 1, query_idx.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
            )
            masks = target_aware_masks(queries, scores, t_feats, t_pads, self.mask_floor)
            for error, ft, m in zip(errors, t_feats, masks):
                total = total + self.level_loss(error, m, ft.shape[1])
        if not self.official_squared_mask:
            total = total / len(layers)
        return {"feature": total}

    def extra_repr(self) -> str:
        return (
            f"top_k={self.top_k}, feature_source={self.feature_source!r}, "
            f"teacher_layers={self.teacher_layers!r}, mask_floor={self.mask_floor}, "
            f"official_squared_mask={self.official_squared_mask}"
        )
