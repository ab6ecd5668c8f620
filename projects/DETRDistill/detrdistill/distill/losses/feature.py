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
from .base import DistillationLoss

__all__ = [
    "TargetAwareFeatureDistillation",
    "official_mask",
    "paper_mask_weight",
    "query_quality_scores",
]

FEATURE_SOURCES = ("input", "memory")
TEACHER_LAYERS = ("all", "last")
FORMS = ("paper", "official")


def query_quality_scores(
    probs: Tensor, boxes: Tensor, targets: list[dict], top_k: int, gamma: float | None = None
) -> tuple[Tensor, Tensor]:
    """Top-K (query, class) entries of one teacher layer and their quality scores.

    The K highest foreground probabilities ``c_j`` over (query, class) (a query appears once
    per selected class, as in the official code), scored with the max IoU of the query's box
    over the image's ground truth (plain IoU, xyxy): ``gamma=None`` gives the official code's
    ``c_j * IoU_j``; a float gives the paper's Eq. 8, ``c_j^gamma * IoU_j^(1 - gamma)``. An
    image without ground truth scores ``c_j`` (official) or ``c_j^gamma``.

    Args:
        probs: (B, Q, C) teacher foreground probabilities.
        boxes: (B, Q, 4) teacher boxes, normalised cxcywh.
        targets: B dicts with ``boxes`` (n_i, 4) normalised cxcywh.
        top_k: Entries per image (capped at Q * C).
        gamma: Eq. 8's exponent in [0, 1], or None for the official product.

    Returns:
        tuple: query indices (B, K') int64 and scores (B, K') float, K' = min(top_k, Q * C).
    """
    bsz, num_queries, num_classes = probs.shape
    k = min(top_k, num_queries * num_classes)
    values, flat = probs.flatten(1).topk(k, dim=1)
    query_idx = torch.div(flat, num_classes, rounding_mode="floor")
    scores = []
    for b in range(bsz):
        cls = values[b] if gamma is None else values[b].pow(gamma)
        gt = targets[b]["boxes"].to(boxes.device, torch.float32)
        if len(gt) == 0:
            scores.append(cls)
            continue
        selected = box_cxcywh_to_xyxy(boxes[b, query_idx[b]].float())
        iou = box_iou(selected, box_cxcywh_to_xyxy(gt)).amax(-1)
        scores.append(cls * (iou if gamma is None else iou.pow(1.0 - gamma)))
    return query_idx, torch.stack(scores)


def official_mask(queries: Tensor, scores: Tensor, feature: Tensor, floor: float) -> Tensor:
    """The official code's one mask per image of a level (no gradient).

    ``A(h, w) = sum_j w_j cos(q_j, F(h, w))``, ``M = clamp(A, min=floor) / max_hw clamp(...)``
    over the whole (padded) map.

    Args:
        queries: (B, K, D) selected teacher query vectors.
        scores: (B, K) their quality scores w_j.
        feature: (B, D, H, W) teacher feature.
        floor: Lower clamp of A.

    Returns:
        (B, H, W) mask in (0, 1].
    """
    with torch.no_grad():
        # sum_j w_j cos(q_j, f) = (sum_j w_j q_j / |q_j|) . f / |f|
        weighted = (scores.unsqueeze(-1) * F.normalize(queries.float(), dim=-1)).sum(1)  # (B, D)
        affinity = torch.einsum("bd,bdhw->bhw", weighted, F.normalize(feature.float(), dim=1))
        affinity = affinity.clamp(min=floor)
        return affinity / affinity.flatten(1).amax(1).view(-1, 1, 1)


def paper_mask_weight(queries: Tensor, scores: Tensor, feature: Tensor) -> Tensor:
    """Eq. 9's weight of each position, ``sum_i q_i psi_i(h, w)^2 / M`` (no gradient).

    ``psi_i = F^T . Q_i`` is the plain dot product of the teacher feature at (h, w) with
    teacher query i (Eq. 7), so ``sum_i q_i / (M d H W) ||psi_i (F^T - phi(F^S))||^2`` equals
    ``sum_hw weight(h, w) e(h, w) / (d H W)`` with ``e = sum_c (F^T - phi(F^S))^2``.

    Args:
        queries: (B, M, D) selected teacher query vectors.
        scores: (B, M) their quality scores q_i.
        feature: (B, D, H, W) teacher feature.

    Returns:
        (B, H, W) weight.
    """
    with torch.no_grad():
        psi = torch.einsum("bmd,bdhw->bmhw", queries.float(), feature.float())
        return torch.einsum("bm,bmhw->bhw", scores.float(), psi.pow(2)) / queries.shape[1]


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


class TargetAwareFeatureDistillation(DistillationLoss):
    """Feature imitation weighted by teacher-query/feature similarity (DETRDistill (b)).

    For each selected teacher decoder layer, the top-K (query, class) entries of every image
    (the official selection; K = ``top_k``) are scored with a quality score (Eq. 8), and
    their decoder hidden states ``q_i`` weight the squared error
    ``e(h, w) = sum_c (adapt(F_S) - F_T)^2`` of every feature level:

    * ``form="paper"`` (default, Eq. 9): ``sum_i q_i / (M d H W) ||psi_i (F_T - adapt(F_S))||^2``
      with ``psi_i = F_T . Q_i`` (plain dot product), ``q_i = c_i^gamma IoU_i^(1-gamma)``,
      M = K, per image, averaged over the batch (:func:`paper_mask_weight`).
    * ``form="official"``: one mask per image ``M = clamp(sum_i w_i cos(q_i, F_T), 0.01) /
      max``, ``w_i = c_i IoU_i``, and ``mean((M F_T - M adapt(F_S))^2)`` over B*C*H*W
      (:func:`official_mask`).

    Both sum over levels and over the selected teacher layers (``layer_reduction``), and both
    cover padded positions, as the official code does (the paper does not say). Adapters: one
    1x1 conv per level from student to teacher channels where they differ (the only trainable
    parameters of this module); identity elsewhere.

    Args:
        student_channels: Student feature channels (int or one per level).
        teacher_channels: Teacher feature channels (int or one per level); must equal the
            teacher's decoder hidden size (queries and features are compared).
        num_levels: Number of feature levels.
        top_k: (query, class) entries per image and teacher layer (official: 100).
        form: "paper" or "official".
        quality_gamma: Eq. 8's gamma ("paper" form; the paper gives no value).
        feature_source: "input" (transformer inputs, ``EncoderOutputs.features``, as in the
            official code) or "memory" (encoder output reshaped per level).
        teacher_layers: "all" teacher decoder layers (official) or only the "last".
        mask_floor: Lower clamp of the affinity ("official" form).
        layer_reduction, empty_term_patience: see :class:`DistillationLoss`.

    Returns from ``forward``: dict with ``feature``.
    """

    def __init__(
        self,
        *,
        student_channels: int | Sequence[int],
        teacher_channels: int | Sequence[int],
        num_levels: int,
        top_k: int = 100,
        form: str = "paper",
        quality_gamma: float = 0.5,
        feature_source: str = "input",
        teacher_layers: str = "all",
        mask_floor: float = 0.01,
        layer_reduction: str = "sum",
        empty_term_patience: int = 100,
    ):
        super().__init__(layer_reduction=layer_reduction, empty_term_patience=empty_term_patience)
        for name, value, allowed in (
            ("feature_source", feature_source, FEATURE_SOURCES),
            ("teacher_layers", teacher_layers, TEACHER_LAYERS),
            ("form", form, FORMS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if num_levels < 1 or top_k < 1 or mask_floor <= 0:
            raise ValueError("num_levels and top_k must be >= 1 and mask_floor > 0")
        if not 0.0 <= quality_gamma <= 1.0:
            raise ValueError(f"quality_gamma must be in [0, 1], got {quality_gamma}")
        self.student_channels = _per_level(student_channels, num_levels, "student_channels")
        self.teacher_channels = _per_level(teacher_channels, num_levels, "teacher_channels")
        self.num_levels = num_levels
        self.top_k = top_k
        self.form = form
        self.quality_gamma = quality_gamma
        self.feature_source = feature_source
        self.teacher_layers = teacher_layers
        self.mask_floor = mask_floor
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

    def level_loss(self, error: Tensor, queries: Tensor, scores: Tensor, teacher: Tensor):
        """Loss of one level for one teacher layer.

        Args:
            error: (B, H, W) ``sum_c (adapt(F_S) - F_T)^2`` (mask-free, so computed once per
                level for all teacher layers).
            queries: (B, K, D) selected teacher queries.
            scores: (B, K) their quality scores.
            teacher: (B, D, H, W) teacher feature.

        Returns:
            Scalar: "paper" ``sum_hw weight e / (B d H W)``; "official" ``sum M^2 e / (B d H W)``.
        """
        if self.form == "official":
            weight = official_mask(queries, scores, teacher, self.mask_floor).pow(2)
        else:
            weight = paper_mask_weight(queries, scores, teacher)
        return (error * weight).sum() / (error.numel() * teacher.shape[1])

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        s_feats, _ = _level_features(inputs.student.encoder, self.feature_source)
        t_feats, _ = _level_features(inputs.teacher.encoder, self.feature_source)
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
                f"teacher feature channels {self.teacher_channels} (queries meet features)"
            )
        errors = [
            (fs.float() - ft.float()).pow(2).sum(1) for fs, ft in zip(adapted, t_feats)
        ]  # per level (B, H, W)
        layers = range(decoder.num_layers) if self.teacher_layers == "all" else [-1]
        gamma = self.quality_gamma if self.form == "paper" else None
        per_layer = []
        for t in layers:
            probs = class_probabilities(
                decoder.pred_logits[t].detach().float(), inputs.teacher_class_type
            )
            query_idx, scores = query_quality_scores(
                probs, decoder.pred_boxes[t].detach(), inputs.targets, self.top_k, gamma
            )
            hidden = decoder.hidden_states[t].detach()
            queries = torch.gather(
                hidden, 1, query_idx.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
            )
            total = sum(
                self.level_loss(error, queries, scores, ft) for error, ft in zip(errors, t_feats)
            )
            per_layer.append({"feature": total})
        return self.combine_layers(per_layer)

    def extra_repr(self) -> str:
        return (
            f"top_k={self.top_k}, form={self.form!r}, quality_gamma={self.quality_gamma}, "
            f"feature_source={self.feature_source!r}, teacher_layers={self.teacher_layers!r}, "
            f"mask_floor={self.mask_floor}, {super().extra_repr()}"
        )
