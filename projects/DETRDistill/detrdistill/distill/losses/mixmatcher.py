"""D3ETR MixMatcher: adaptive (Hungarian) and fixed (shared-query) decoder distillation."""

from __future__ import annotations

import torch
from torch import Tensor

from ...modeling.outputs import DecoderOutputs
from ..groups import TEACHER_QUERIES
from ..inputs import DistillationInputs
from ..matching import (
    TeacherStudentMatcher,
    class_probabilities,
    layers_as_batch,
    split_by_layer,
)
from .attention import AttentionDistillation
from .base import DistillationLoss
from .prediction import PredictionDistillation

__all__ = ["AdaptiveMatchingDistillation", "FixedMatchingDistillation"]

Pairs = list[tuple[Tensor, Tensor]]


def _layer_attention(decoder: DecoderOutputs, layer: int, which: str):
    maps = getattr(decoder, which)
    return None if maps is None else maps[layer]


class _DecoderDistillation(DistillationLoss):
    """Prediction + attention distillation of paired decoder layers (shared by both matchers).

    ``attention`` is an :class:`AttentionDistillation`, or None for its defaults with
    ``self_attn_weight`` / ``cross_attn_weight``.
    """

    def __init__(
        self,
        *,
        prediction: PredictionDistillation | None = None,
        self_attn_weight: float = 0.0,
        cross_attn_weight: float = 0.0,
        attention: AttentionDistillation | None = None,
        layer_reduction: str = "sum",
        empty_term_patience: int = 100,
    ):
        super().__init__(layer_reduction=layer_reduction, empty_term_patience=empty_term_patience)
        self.prediction = prediction if prediction is not None else PredictionDistillation()
        if attention is None:
            attention = AttentionDistillation(
                self_attn_weight=self_attn_weight, cross_attn_weight=cross_attn_weight
            )
        elif self_attn_weight or cross_attn_weight:
            raise ValueError(
                "give the attention weights either to the AttentionDistillation passed as "
                "attention= or as self_attn_weight/cross_attn_weight, not both"
            )
        self.attention = attention
        self.needs_attention = self.attention.enabled

    def distill_pairs(self, inputs, student, layer_pairs, per_layer_pairs) -> dict[str, Tensor]:
        """Distill every layer pair on its query pairs and combine the layers."""
        per_layer, count = [], 0
        for (s, t), pairs in zip(layer_pairs, per_layer_pairs):
            per_layer.append(self.distill_layer(inputs, student, s, t, pairs))
            count += self.prediction.last_counts["class"]
        self.empty_terms.update({"pairs": count})
        return self.combine_layers(per_layer)

    def distill_layer(
        self,
        inputs: DistillationInputs,
        student: DecoderOutputs,
        s: int,
        t: int,
        pairs: Pairs,
    ) -> dict[str, Tensor]:
        """Prediction and attention losses of student layer ``s`` vs teacher layer ``t``."""
        teacher = inputs.teacher.decoder
        losses = self.prediction.forward_pairs(
            student.pred_logits[s],
            student.pred_boxes[s],
            teacher.pred_logits[t],
            teacher.pred_boxes[t],
            pairs,
            inputs.student_class_type,
            inputs.teacher_class_type,
        )
        if self.attention.enabled:
            losses.update(
                self.attention(
                    _layer_attention(student, s, "self_attn"),
                    _layer_attention(teacher, t, "self_attn"),
                    _layer_attention(student, s, "cross_attn"),
                    _layer_attention(teacher, t, "cross_attn"),
                    pairs,
                    inputs.student.encoder.spatial_shapes,
                    inputs.teacher.encoder.spatial_shapes,
                )
            )
        return losses


class AdaptiveMatchingDistillation(_DecoderDistillation):
    """D3ETR Adaptive Matching: Hungarian-match the student's own outputs to the teacher's.

    For every ``(s, t)`` in ``inputs.layer_pairs`` all teacher predictions of layer ``t`` are
    matched to the student's layer-``s`` predictions (one joint soft match, ``matcher``), and
    the pairs are distilled on predictions (``prediction``) and, when their weights are > 0,
    on self-attention (restricted to the matched queries) and cross-attention (matched
    queries' maps over the memory, or all queries' with the port's scope). Layer pairs combine
    by ``layer_reduction`` (the public port: sum).

    Args:
        matcher: A :class:`TeacherStudentMatcher` (default: its defaults).
        prediction: A :class:`PredictionDistillation` (default: class 1 / L1 5 / GIoU 2).
        self_attn_weight: Weight of the self-attention term (default distance, KL).
        cross_attn_weight: Weight of the cross-attention term.
        attention: An :class:`AttentionDistillation` instead of the two weights.
        layer_reduction, empty_term_patience: see :class:`DistillationLoss`.

    Returns from ``forward``: dict with ``class``, ``bbox``, ``giou`` and, when enabled,
    ``self_attn`` and ``cross_attn``.
    """

    def __init__(self, *, matcher: TeacherStudentMatcher | None = None, **kwargs):
        super().__init__(**kwargs)
        self.matcher = matcher if matcher is not None else TeacherStudentMatcher()

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        student, teacher = inputs.student.decoder, inputs.teacher.decoder
        s_layers = [s for s, _ in inputs.layer_pairs]
        t_layers = [t for _, t in inputs.layer_pairs]
        teacher_logits = layers_as_batch(teacher.pred_logits, t_layers).detach().float()
        all_pairs = self.matcher(  # every layer pair in one solver call
            layers_as_batch(student.pred_logits, s_layers),
            layers_as_batch(student.pred_boxes, s_layers),
            class_probabilities(teacher_logits, inputs.teacher_class_type),
            layers_as_batch(teacher.pred_boxes, t_layers),
            inputs.student_class_type,
        )
        per_layer_pairs = split_by_layer(all_pairs, len(s_layers))
        return self.distill_pairs(inputs, student, inputs.layer_pairs, per_layer_pairs)


class FixedMatchingDistillation(_DecoderDistillation):
    """D3ETR Fixed Matching: the teacher's queries through the student decoder, paired by index.

    ``inputs.student.groups["teacher_queries"]`` (the student decoder's outputs for the
    teacher's initial queries, Qt queries) is compared with the teacher's own outputs, query i
    with query i, for every ``(s, t)`` in ``inputs.layer_pairs``: predictions and, when enabled,
    the group's own (B, H, Qt, Qt) self-attention block and its cross-attention. Layer pairs
    combine by ``layer_reduction`` (the public port: sum).

    Args:
        prediction: A :class:`PredictionDistillation` (default: class 1 / L1 5 / GIoU 2).
        self_attn_weight: Weight of the self-attention term (default distance, KL).
        cross_attn_weight: Weight of the cross-attention term.
        attention: An :class:`AttentionDistillation` instead of the two weights.
        layer_reduction, empty_term_patience: see :class:`DistillationLoss`.

    Returns from ``forward``: dict with ``class``, ``bbox``, ``giou`` and, when enabled,
    ``self_attn`` and ``cross_attn``.
    """

    query_groups = (TEACHER_QUERIES,)

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        group, teacher = self.group_outputs(inputs, TEACHER_QUERIES), inputs.teacher.decoder
        bsz, num_queries = group.pred_logits.shape[1:3]
        if num_queries != teacher.pred_logits.shape[2]:
            raise ValueError(
                f"the {TEACHER_QUERIES!r} group has {num_queries} queries but the teacher has "
                f"{teacher.pred_logits.shape[2]}; it must be the teacher's queries"
            )
        index = torch.arange(num_queries)
        pairs = [(index, index)] * bsz
        layer_pairs = inputs.layer_pairs
        return self.distill_pairs(inputs, group, layer_pairs, [pairs] * len(layer_pairs))
