"""DETRDistill (a): Hungarian-matching logits distillation, decoder layer by layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..inputs import DistillationInputs
from ..matching import (
    TeacherStudentMatcher,
    class_probabilities,
    layers_as_batch,
    split_by_layer,
)
from .prediction import LayerAverage, PredictionDistillation

__all__ = ["HungarianLogitsDistillation"]

MODES = ("split", "joint")


class HungarianLogitsDistillation(nn.Module):
    """Match student predictions to teacher predictions per layer pair and distill them.

    For every ``(s, t)`` in ``inputs.layer_pairs``, student layer ``s`` (own queries) is matched
    to teacher layer ``t`` with ``matcher`` and distilled with ``prediction``:

    * ``mode="split"`` (paper intent, default): teacher predictions whose max foreground
      probability is ``>= positive_threshold`` are positives; they are matched with the full
      cost (class + L1 + GIoU) and distilled on class and boxes. The student queries left over
      are matched to the remaining (negative) teacher predictions on the class cost alone and
      distilled on the class term only: a background prediction's box carries no information.
    * ``mode="joint"`` (official code): every teacher prediction takes part in one full-cost
      match and every pair gets class and box terms.

    Student queries left unmatched (Qs > Qt) get no term at all (the official code would give
    them the invalid class target ``num_classes``; that bug is not reproduced). Class terms
    are averaged over all pairs, box terms over the box-carrying pairs; then over layer pairs.

    Args:
        matcher: A :class:`TeacherStudentMatcher` (default: its defaults, class 1 / L1 5 /
            GIoU 2, class cost averaged over classes).
        prediction: A :class:`PredictionDistillation` (default: class 1 / L1 5 / GIoU 2).
        mode: "split" or "joint".
        positive_threshold: Teacher confidence separating positives from negatives ("split").

    Returns from ``forward``: dict with ``class``, ``bbox``, ``giou``.
    """

    needs_attention = False
    needs_teacher_queries = False
    needs_teacher_assignment = False

    def __init__(
        self,
        *,
        matcher: TeacherStudentMatcher | None = None,
        prediction: PredictionDistillation | None = None,
        mode: str = "split",
        positive_threshold: float = 0.5,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.matcher = matcher if matcher is not None else TeacherStudentMatcher()
        self.prediction = prediction if prediction is not None else PredictionDistillation()
        self.mode = mode
        self.positive_threshold = positive_threshold

    def match(
        self,
        student_logits: Tensor,
        student_boxes: Tensor,
        teacher_logits: Tensor,
        teacher_boxes: Tensor,
        student_class_type: str,
        teacher_class_type: str,
    ) -> tuple[list[tuple[Tensor, Tensor]], Tensor | None]:
        """Pairs and the (B, Qt) box mask (None in "joint" mode) of a batch; ``forward`` passes
        all layer pairs at once, stacked into the batch axis (:func:`layers_as_batch`).

        Args:
            student_logits: (B, Qs, K_s).
            student_boxes: (B, Qs, 4).
            teacher_logits: (B, Qt, K_t).
            teacher_boxes: (B, Qt, 4).
            student_class_type: "focal" or "softmax".
            teacher_class_type: "focal" or "softmax".

        Returns:
            tuple: B ``(student_idx, teacher_idx)`` pairs (positives first in "split" mode) and
            the positive mask of the teacher predictions.
        """
        probs = class_probabilities(teacher_logits.detach().float(), teacher_class_type)
        args = (student_logits, student_boxes, probs, teacher_boxes, student_class_type)
        if self.mode == "joint":
            return self.matcher(*args), None
        positive = probs.amax(-1) >= self.positive_threshold  # (B, Qt)
        pos_pairs = self.matcher(*args, teacher_mask=positive)
        free = torch.ones(student_logits.shape[:2], dtype=torch.bool)
        for b, (s_idx, _) in enumerate(pos_pairs):
            free[b, s_idx] = False
        neg_pairs = self.matcher(
            *args, teacher_mask=~positive, student_mask=free.to(positive.device), class_only=True
        )
        pairs = [
            (torch.cat([ps, ns]), torch.cat([pt, nt]))
            for (ps, pt), (ns, nt) in zip(pos_pairs, neg_pairs)
        ]
        return pairs, positive

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        student, teacher = inputs.student.decoder, inputs.teacher.decoder
        s_layers = [s for s, _ in inputs.layer_pairs]
        t_layers = [t for _, t in inputs.layer_pairs]
        num_pairs = len(s_layers)
        all_pairs, all_masks = self.match(  # every layer pair in one matching call per kind
            layers_as_batch(student.pred_logits, s_layers),
            layers_as_batch(student.pred_boxes, s_layers),
            layers_as_batch(teacher.pred_logits, t_layers),
            layers_as_batch(teacher.pred_boxes, t_layers),
            inputs.student_class_type,
            inputs.teacher_class_type,
        )
        masks = [None] * num_pairs if all_masks is None else all_masks.chunk(num_pairs)
        mean = LayerAverage(num_pairs)
        for (s, t), pairs, box_mask in zip(
            inputs.layer_pairs, split_by_layer(all_pairs, num_pairs), masks
        ):
            layer = (
                student.pred_logits[s],
                student.pred_boxes[s],
                teacher.pred_logits[t],
                teacher.pred_boxes[t],
            )
            mean.add(
                self.prediction.forward_pairs(
                    *layer,
                    pairs,
                    inputs.student_class_type,
                    inputs.teacher_class_type,
                    box_mask=box_mask,
                )
            )
        return mean.total

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, positive_threshold={self.positive_threshold}"
