"""DETRDistill (c): query-prior assignment distillation (the teacher-query group)."""

from __future__ import annotations

from torch import Tensor

from ..groups import TEACHER_QUERIES
from ..inputs import DistillationInputs
from ..layer_mapping import map_decoder_layers
from .base import DistillationLoss

__all__ = ["QueryPriorAssignmentDistillation"]

ASSIGNMENTS = ("teacher", "student")


class QueryPriorAssignmentDistillation(DistillationLoss):
    """Supervise the student's outputs for the teacher's queries with the ground truth.

    The wrapper feeds the teacher's initial queries through the student decoder as the query
    group ``"teacher_queries"`` (``inputs.student.groups["teacher_queries"]``: L_s layers, Qt
    queries). This loss evaluates the student's
    criterion (``inputs.student_criterion``) on that group:

    * ``assignment="teacher"`` (paper intent, default): the query-to-GT assignment of student
      layer ``s`` is the teacher's own assignment ``inputs.teacher_gt_indices[t]`` of its paired
      teacher layer ``t`` (teacher query i is the teacher-query group's query i). Each student
      layer takes the teacher layer of its (last) entry in ``inputs.layer_pairs``; a student layer
      missing from ``layer_pairs`` takes its "last_aligned" teacher layer.
    * ``assignment="student"`` (official code, where the teacher assignment is dropped by a
      bug): the criterion matches the group to the GT by itself.

    Returns from ``forward``: the criterion's losses (already weighted by its ``weight_dict``)
    with the ``loss_`` prefix removed: ``class``, ``bbox``, ``giou`` for the last layer and
    ``class_{l}``, ``bbox_{l}``, ``giou_{l}`` for earlier layers.

    Every student layer is its own key (the criterion's per-layer terms), i.e. layers are
    summed, as in the official code.

    Args:
        assignment: "teacher" or "student".
        empty_term_patience: see :class:`DistillationLoss`.
    """

    query_groups = (TEACHER_QUERIES,)

    def __init__(self, *, assignment: str = "teacher", empty_term_patience: int = 100):
        super().__init__(empty_term_patience=empty_term_patience)
        if assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
        self.assignment = assignment
        self.needs_teacher_assignment = assignment == "teacher"

    @staticmethod
    def student_to_teacher_layers(
        layer_pairs: list[tuple[int, int]], num_student: int, num_teacher: int
    ) -> list[int]:
        """The teacher layer whose assignment each of the ``num_student`` layers uses."""
        chosen = dict(map_decoder_layers(num_student, num_teacher, "last_aligned"))
        chosen.update(dict(layer_pairs))
        return [chosen[s] for s in range(num_student)]

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        group = self.group_outputs(inputs, TEACHER_QUERIES)
        if inputs.student_criterion is None:
            raise ValueError("QueryPriorAssignmentDistillation needs inputs.student_criterion")
        num_teacher_queries = inputs.teacher.decoder.pred_logits.shape[2]
        if group.pred_logits.shape[2] != num_teacher_queries:
            raise ValueError(
                f"the {TEACHER_QUERIES!r} group has {group.pred_logits.shape[2]} queries but the "
                f"teacher has {num_teacher_queries}; it must be the teacher's queries"
            )
        indices = None
        if self.assignment == "teacher":
            if inputs.teacher_gt_indices is None:
                raise ValueError(
                    'assignment="teacher" needs inputs.teacher_gt_indices (the teacher\'s '
                    "per-layer Hungarian assignment to the ground truth)"
                )
            num_teacher = len(inputs.teacher_gt_indices)
            layers = self.student_to_teacher_layers(
                inputs.layer_pairs, group.num_layers, num_teacher
            )
            indices = [inputs.teacher_gt_indices[t] for t in layers]
        losses, _ = inputs.student_criterion(group, inputs.targets, indices=indices)
        self.empty_terms.update({"ground truth": sum(len(t["labels"]) for t in inputs.targets)})
        return {k.removeprefix("loss_"): v for k, v in losses.items()}

    def extra_repr(self) -> str:
        return f"assignment={self.assignment!r}"
