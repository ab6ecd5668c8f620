"""DETRDistill (a): Hungarian-matching logits distillation, decoder layer by layer."""

from __future__ import annotations

import torch
from torch import Tensor

from ..inputs import DistillationInputs
from ..matching import (
    TeacherStudentMatcher,
    class_probabilities,
    layers_as_batch,
    split_by_layer,
)
from .base import DistillationLoss
from .prediction import PredictionDistillation, clamp_boxes_to_image

__all__ = ["HungarianLogitsDistillation"]

MODES = ("split", "joint")
POSITIVE_RULES = ("teacher_assignment", "score")
NEGATIVE_MATCHES = ("full", "box")


class HungarianLogitsDistillation(DistillationLoss):
    """Match student predictions to teacher predictions per layer pair and distill them.

    For every ``(s, t)`` in ``inputs.layer_pairs``, student layer ``s`` (own queries) is matched
    to teacher layer ``t`` with ``matcher`` and every pair is distilled with ``prediction``
    (class + L1 + GIoU, each divided by the number of pairs of the layer pair):

    * ``mode="split"`` (the paper, Eqs. 3-4; default): the teacher's predictions are split into
      positives and negatives, each set gets its own bipartite matching (positives first, then
      the negatives among the student queries left) and both sets get the full matching loss
      ``L_match``. Positives (the paper does not define them): ``positives=
      "teacher_assignment"`` (default) are the teacher queries its own Hungarian matcher assigns
      to the ground truth at layer ``t`` (as many as ground-truth objects); ``"score"`` are
      those whose max foreground probability is ``>= positive_threshold``.
      ``negative_match="box"`` matches the negatives on the box costs alone (a third-party
      reading of the paper); ``"full"`` (default) uses the full cost, as Eq. 4 is printed.
    * ``mode="joint"`` (the official code): one full-cost match over all teacher predictions.

    ``clamp_teacher_boxes`` (official) clips the teacher's boxes to the image before matching
    and distillation. Student queries left unmatched (Qs > Qt) get no term (the official code
    would give them the invalid class target ``num_classes``; that bug is not reproduced).
    Layer pairs combine by ``layer_reduction`` (official: sum). The step's assignment is left
    in ``inputs.shared["logits_pairs"]`` (one list of B pairs per layer pair).

    Args:
        matcher: A :class:`TeacherStudentMatcher` (default: class 1 / L1 5 / GIoU 2, class
            cost summed over classes).
        prediction: A :class:`PredictionDistillation` (default: class 1 / L1 5 / GIoU 2).
        mode: "split" or "joint".
        positives: "teacher_assignment" or "score" ("split" only).
        positive_threshold: Teacher confidence of a positive (``positives="score"``).
        negative_match: "full" or "box" ("split" only).
        clamp_teacher_boxes: Clip teacher boxes to the image.
        layer_reduction, empty_term_patience: see :class:`DistillationLoss`.

    Returns from ``forward``: dict with ``class``, ``bbox``, ``giou``.
    """

    writes_shared = ("logits_pairs",)

    def __init__(
        self,
        *,
        matcher: TeacherStudentMatcher | None = None,
        prediction: PredictionDistillation | None = None,
        mode: str = "split",
        positives: str = "teacher_assignment",
        positive_threshold: float = 0.5,
        negative_match: str = "full",
        clamp_teacher_boxes: bool = True,
        layer_reduction: str = "sum",
        empty_term_patience: int = 100,
    ):
        super().__init__(layer_reduction=layer_reduction, empty_term_patience=empty_term_patience)
        for name, value, allowed in (
            ("mode", mode, MODES),
            ("positives", positives, POSITIVE_RULES),
            ("negative_match", negative_match, NEGATIVE_MATCHES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.matcher = matcher if matcher is not None else TeacherStudentMatcher()
        self.prediction = prediction if prediction is not None else PredictionDistillation()
        self.mode = mode
        self.positives = positives
        self.positive_threshold = positive_threshold
        self.negative_match = negative_match
        self.clamp_teacher_boxes = clamp_teacher_boxes
        self.needs_teacher_assignment = mode == "split" and positives == "teacher_assignment"

    def positive_mask(self, inputs: DistillationInputs, probs: Tensor, t_layers: list[int]):
        """(P*B, Qt) bool: the teacher's positive predictions of every stacked layer pair.

        Args:
            inputs: the step's inputs (``teacher_gt_indices`` for "teacher_assignment").
            probs: (P*B, Qt, C) teacher foreground probabilities, layer-major.
            t_layers: the P teacher layers.
        """
        if self.positives == "score":
            return probs.amax(-1) >= self.positive_threshold
        if inputs.teacher_gt_indices is None:
            raise ValueError(
                'positives="teacher_assignment" needs inputs.teacher_gt_indices (the teacher\'s '
                "per-layer Hungarian assignment to the ground truth)"
            )
        mask = torch.zeros(probs.shape[:2], dtype=torch.bool)
        bsz = probs.shape[0] // len(t_layers)
        for p, t in enumerate(t_layers):
            for b, (query_idx, _) in enumerate(inputs.teacher_gt_indices[t]):
                mask[p * bsz + b, query_idx.cpu()] = True
        return mask.to(probs.device)

    def match(
        self,
        student_logits: Tensor,
        student_boxes: Tensor,
        teacher_probs: Tensor,
        teacher_boxes: Tensor,
        student_class_type: str,
        positive: Tensor | None,
    ) -> list[tuple[Tensor, Tensor]]:
        """Pairs of a (stacked) batch: one joint match, or positives then negatives.

        Args:
            student_logits: (B, Qs, K_s).
            student_boxes: (B, Qs, 4).
            teacher_probs: (B, Qt, C) teacher foreground probabilities.
            teacher_boxes: (B, Qt, 4).
            student_class_type: "focal" or "softmax".
            positive: (B, Qt) bool positive teacher predictions, or None for one joint match.

        Returns:
            B ``(student_idx, teacher_idx)`` pairs (positives first in "split" mode).
        """
        args = (student_logits, student_boxes, teacher_probs, teacher_boxes, student_class_type)
        cost = self.matcher.cost_matrix(*args)  # one cost for the joint or both split matches
        if positive is None:
            return self.matcher.assign(cost)
        pos_pairs = self.matcher.assign(cost, positive)
        free = torch.ones(student_logits.shape[:2], dtype=torch.bool)
        for b, (s_idx, _) in enumerate(pos_pairs):
            free[b, s_idx] = False
        if self.negative_match == "box":
            cost = self.matcher.cost_matrix(*args, box_only=True)
        neg_pairs = self.matcher.assign(cost, ~positive, student_mask=free.to(positive.device))
        return [
            (torch.cat([ps, ns]), torch.cat([pt, nt]))
            for (ps, pt), (ns, nt) in zip(pos_pairs, neg_pairs)
        ]

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        student, teacher = inputs.student.decoder, inputs.teacher.decoder
        s_layers = [s for s, _ in inputs.layer_pairs]
        t_layers = [t for _, t in inputs.layer_pairs]
        teacher_boxes = teacher.pred_boxes.detach()
        if self.clamp_teacher_boxes:
            teacher_boxes = clamp_boxes_to_image(teacher_boxes)
        probs = class_probabilities(
            layers_as_batch(teacher.pred_logits, t_layers).detach().float(),
            inputs.teacher_class_type,
        )
        positive = None if self.mode == "joint" else self.positive_mask(inputs, probs, t_layers)
        all_pairs = self.match(  # every layer pair in one matching call per set
            layers_as_batch(student.pred_logits, s_layers),
            layers_as_batch(student.pred_boxes, s_layers),
            probs,
            layers_as_batch(teacher_boxes, t_layers),
            inputs.student_class_type,
            positive,
        )
        per_layer_pairs = split_by_layer(all_pairs, len(s_layers))
        inputs.shared["logits_pairs"] = per_layer_pairs
        per_layer, counts = [], {"class": 0, "bbox": 0}
        for (s, t), pairs in zip(inputs.layer_pairs, per_layer_pairs):
            per_layer.append(
                self.prediction.forward_pairs(
                    student.pred_logits[s],
                    student.pred_boxes[s],
                    teacher.pred_logits[t],
                    teacher_boxes[t],
                    pairs,
                    inputs.student_class_type,
                    inputs.teacher_class_type,
                )
            )
            counts = {k: counts[k] + self.prediction.last_counts[k] for k in counts}
        if positive is not None:
            counts["positives"] = int(positive.sum())
        self.empty_terms.update(counts)
        return self.combine_layers(per_layer)

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, positives={self.positives!r}, "
            f"positive_threshold={self.positive_threshold}, "
            f"negative_match={self.negative_match!r}, "
            f"clamp_teacher_boxes={self.clamp_teacher_boxes}, {super().extra_repr()}"
        )
