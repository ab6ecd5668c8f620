"""The bundle of tensors every distillation loss reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..modeling.class_type import check_class_type
from ..modeling.outputs import DETROutput

__all__ = ["DistillationInputs"]


@dataclass
class DistillationInputs:
    """Everything a distillation loss may need for one training step.

    Attributes:
        teacher: The teacher's :class:`DETROutput`, computed under ``no_grad`` (attention maps
            present when a loss has ``needs_attention``; ``teacher.groups[name]`` for the
            declared groups that also run in the teacher).
        student: The student's :class:`DETROutput`; ``student.groups[name]`` holds the student
            decoder's outputs for each query group the losses name in ``query_groups`` (e.g.
            ``"teacher_queries"``), and no other group (never the student's denoising queries).
        targets: B ground-truth dicts with ``labels`` (n_i,) int64 and ``boxes`` (n_i, 4)
            normalised cxcywh.
        layer_pairs: ``(student decoder layer, teacher decoder layer)`` pairs to distill.
        teacher_class_type: "focal" (sigmoid logits, K = num_classes) or "softmax"
            (K = num_classes + 1, no-object last).
        student_class_type: Same for the student.
        teacher_gt_indices: Per TEACHER decoder layer, per image ``(teacher query idx, gt idx)``,
            the teacher's own Hungarian assignment to the ground truth (when a loss has
            ``needs_teacher_assignment``), else None.
        student_criterion: The student's ``SetCriterion`` (used by the query-prior loss).
        shared: Results one loss hands to another in the same step, e.g. ``"logits_pairs"``:
            the logits distillation's teacher-student assignment, per layer pair, which the
            official contrastive term reuses (see ``DistillationLoss.reads_shared``).
    """

    teacher: DETROutput
    student: DETROutput
    targets: list[dict]
    layer_pairs: list[tuple[int, int]]
    teacher_class_type: str
    student_class_type: str
    teacher_gt_indices: list | None = None
    student_criterion: nn.Module | None = None
    shared: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("teacher_class_type", "student_class_type"):
            check_class_type(getattr(self, name), f"DistillationInputs.{name}")
