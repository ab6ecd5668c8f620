"""KD-DETR (Wang et al., CVPR 2024): distillation on shared distillation points."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss

from ...layers import box_cxcywh_to_xyxy
from ...modeling.class_type import check_class_type
from ..groups import GENERAL_POINTS, SPECIFIC_POINTS
from ..inputs import DistillationInputs
from ..matching import class_probabilities
from .base import DistillationLoss

__all__ = ["KDDETRDistillation"]

TEACHER_LAYERS = ("last", "mapped")
CLASS_REDUCTIONS = ("mean", "sum")


class KDDETRDistillation(DistillationLoss):
    """The student mimics the teacher's predictions on the same distillation points.

    Each point set is a query group decoded by the student (see
    :class:`~detrdistill.distill.groups.SpecificPoints` and
    :class:`~detrdistill.distill.groups.GeneralPoints`); point i of the student is compared with
    point i of the teacher, no matching. The teacher's outputs are those of the same group in
    the teacher when the group ran there (general points), else the teacher's own detection
    outputs (specific points: the teacher's own queries). The detection queries are not
    involved: they train on the ground truth as usual.

    Per decoder layer pair and point set, over the B·Q points i, with w_i the teacher's maximum
    foreground probability (detached; 1 without ``weight_by_teacher_confidence``):

    * ``class``: ``class_weight · Σ_i w_i · T² · KL_i`` with
      ``KL_i = reduce_c softmax(t_i/T)_c · (log softmax(t_i/T)_c − log softmax(s_i/T)_c)``,
      reduce = mean over the K logits (the official code) or sum (``class_reduction``); summed
      over the points, not normalised (the official code);
    * ``bbox``: ``bbox_weight · Σ_i w_i · mean_4 |b^s_i − b^t_i| / Σ_i w_i`` (normalised cxcywh);
    * ``giou``: ``giou_weight · Σ_i w_i · (1 − GIoU(b^s_i, b^t_i)) / Σ_i w_i``.

    Layer pairs: every student layer of ``inputs.layer_pairs`` against the teacher's last layer
    (``teacher_layer="last"``, the official code) or against its paired teacher layer
    (``"mapped"``); the terms of the pairs are summed (``layer_reduction``).

    Returns from ``forward``: ``{set}_class``, ``{set}_bbox``, ``{set}_giou`` for each set,
    ``set`` = "specific" / "general".

    Args:
        specific_group: query group of the specific points, or None (no specific points).
        general_group: query group of the general points, or None.
        class_weight, bbox_weight, giou_weight: weights of the terms (official: 1 / 5 / 2).
        temperature: T of the class term (official: 10).
        weight_by_teacher_confidence: weight each point by the teacher's confidence (the
            paper's foreground re-balance weight).
        teacher_layer: "last" or "mapped".
        class_reduction: "mean" or "sum" of the KL over the logits.
        layer_reduction: see :class:`DistillationLoss`.
    """

    def __init__(
        self,
        *,
        specific_group: str | None = SPECIFIC_POINTS,
        general_group: str | None = GENERAL_POINTS,
        class_weight: float = 1.0,
        bbox_weight: float = 5.0,
        giou_weight: float = 2.0,
        temperature: float = 10.0,
        weight_by_teacher_confidence: bool = True,
        teacher_layer: str = "last",
        class_reduction: str = "mean",
        layer_reduction: str = "sum",
    ):
        super().__init__(layer_reduction=layer_reduction, empty_term_patience=0)
        self.point_sets = {
            point_set: name
            for point_set, name in (("specific", specific_group), ("general", general_group))
            if name is not None
        }
        if not self.point_sets:
            raise ValueError("KDDETRDistillation needs specific_group or general_group")
        if len(set(self.point_sets.values())) != len(self.point_sets):
            raise ValueError("specific_group and general_group must be different query groups")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if teacher_layer not in TEACHER_LAYERS:
            raise ValueError(
                f"teacher_layer must be one of {TEACHER_LAYERS}, got {teacher_layer!r}"
            )
        if class_reduction not in CLASS_REDUCTIONS:
            raise ValueError(
                f"class_reduction must be one of {CLASS_REDUCTIONS}, got {class_reduction!r}"
            )
        self.query_groups = tuple(self.point_sets.values())
        self.class_weight = class_weight
        self.bbox_weight = bbox_weight
        self.giou_weight = giou_weight
        self.temperature = temperature
        self.weight_by_teacher_confidence = weight_by_teacher_confidence
        self.teacher_layer = teacher_layer
        self.class_reduction = class_reduction

    def point_losses(
        self,
        student_logits: Tensor,
        student_boxes: Tensor,
        teacher_logits: Tensor,
        teacher_boxes: Tensor,
        teacher_class_type: str,
    ) -> dict[str, Tensor]:
        """The three weighted terms of one layer pair on same-index points.

        Args:
            student_logits: (B, Q, K) student logits.
            student_boxes: (B, Q, 4) normalised cxcywh.
            teacher_logits: (B, Q, K) teacher logits (detached here).
            teacher_boxes: (B, Q, 4) normalised cxcywh (detached here).
            teacher_class_type: "focal" or "softmax" (its confidence: the maximum foreground
                probability).

        Returns:
            dict with scalar ``class``, ``bbox`` and ``giou``.
        """
        check_class_type(teacher_class_type, "teacher_class_type")
        if student_logits.shape != teacher_logits.shape:
            raise ValueError(
                f"student logits {tuple(student_logits.shape)} and teacher logits "
                f"{tuple(teacher_logits.shape)} differ: the points must be the same and the "
                "classifiers alike (model.student/teacher.num_classes, loss_class_type)"
            )
        temp = self.temperature
        s = student_logits.float() / temp
        t = teacher_logits.detach().float() / temp
        weight = torch.ones_like(t[..., 0])
        if self.weight_by_teacher_confidence:
            probs = class_probabilities(teacher_logits.detach().float(), teacher_class_type)
            weight = probs.amax(-1)
        kl = F.kl_div(s.log_softmax(-1), t.log_softmax(-1), reduction="none", log_target=True)
        kl = kl.mean(-1) if self.class_reduction == "mean" else kl.sum(-1)
        class_term = (weight * kl).sum() * temp**2

        src = student_boxes.float().flatten(0, -2)
        tgt = teacher_boxes.detach().float().flatten(0, -2)
        flat_weight = weight.flatten()
        l1 = (src - tgt).abs().mean(-1)
        giou = generalized_box_iou_loss(
            box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt), reduction="none"
        )
        norm = flat_weight.sum().clamp(min=torch.finfo(flat_weight.dtype).tiny)
        return {
            "class": self.class_weight * class_term,
            "bbox": self.bbox_weight * (flat_weight * l1).sum() / norm,
            "giou": self.giou_weight * (flat_weight * giou).sum() / norm,
        }

    def layer_pairs(
        self, layer_pairs: list[tuple[int, int]], num_teacher_layers: int
    ) -> list[tuple[int, int]]:
        """(student layer, teacher layer) pairs: the teacher's last layer for every student
        layer of ``layer_pairs`` (``teacher_layer="last"``), or ``layer_pairs`` itself."""
        if self.teacher_layer == "mapped":
            return list(layer_pairs)
        students = dict.fromkeys(s for s, _ in layer_pairs)
        return [(s, num_teacher_layers - 1) for s in students]

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        losses = {}
        for point_set, name in self.point_sets.items():
            student = self.group_outputs(inputs, name, "student")
            if name in inputs.teacher.groups or point_set == "general":
                teacher = self.group_outputs(inputs, name, "teacher")
            else:  # the teacher's own queries: its own outputs
                teacher = inputs.teacher.decoder
            num_student, num_teacher = student.pred_logits.shape[2], teacher.pred_logits.shape[2]
            if num_student != num_teacher:
                raise ValueError(
                    f"query group {name!r} has {num_student} points in the student but the "
                    f"teacher's outputs have {num_teacher}: the {point_set} points must be the "
                    "same in both"
                )
            per_layer = [
                self.point_losses(
                    student.pred_logits[s],
                    student.pred_boxes[s],
                    teacher.pred_logits[t],
                    teacher.pred_boxes[t],
                    inputs.teacher_class_type,
                )
                for s, t in self.layer_pairs(inputs.layer_pairs, teacher.num_layers)
            ]
            for component, value in self.combine_layers(per_layer).items():
                losses[f"{point_set}_{component}"] = value
        return losses

    def extra_repr(self) -> str:
        return (
            f"point_sets={self.point_sets}, class_weight={self.class_weight}, "
            f"bbox_weight={self.bbox_weight}, giou_weight={self.giou_weight}, "
            f"temperature={self.temperature}, "
            f"weight_by_teacher_confidence={self.weight_by_teacher_confidence}, "
            f"teacher_layer={self.teacher_layer!r}, class_reduction={self.class_reduction!r}, "
            f"layer_reduction={self.layer_reduction!r}"
        )
