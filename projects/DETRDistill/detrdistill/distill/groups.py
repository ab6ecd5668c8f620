"""Named query groups of a distillation step: how each is built and which models decode it.

A loss names the groups it reads (``DistillationLoss.query_groups``); the wrapper keeps one
:class:`QueryGroupBuilder` per named group and, each training step, builds the groups and runs
each model once with its groups (``DETRBase.run(groups=...)``). A group's outputs are then in
``inputs.student.groups[name]`` (and ``inputs.teacher.groups[name]`` when it runs in the teacher
too). A new group kind is one builder here plus its entry in :func:`default_group_builder` (or a
``model.group_builders`` entry in a config).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..modeling.outputs import DETROutput, EncoderOutputs, QueryGroup
from .adapters import QueryAdapter

__all__ = [
    "MODELS",
    "TEACHER_QUERIES",
    "GroupContext",
    "QueryGroupBuilder",
    "TeacherQueryGroup",
    "default_group_builder",
]

#: The models a group can run in.
MODELS = ("student", "teacher")
#: The teacher's initial queries decoded by the student (DETRDistill (c), D3ETR fixed matching).
TEACHER_QUERIES = "teacher_queries"
TEACHER_QUERY_REFERENCES = ("student_head", "teacher")


@dataclass
class GroupContext:
    """What a builder may read in one training step.

    Attributes:
        student: the student detector.
        teacher: the teacher detector.
        targets: B ground-truth dicts (``labels``, normalised cxcywh ``boxes``).
        teacher_output: the teacher's :class:`DETROutput`; None while the groups that run in
            the teacher are built (before the teacher runs).
    """

    student: nn.Module
    teacher: nn.Module
    targets: list[dict]
    teacher_output: DETROutput | None = None


class QueryGroupBuilder(nn.Module):
    """Base of the group builders: ``forward(context) -> {model: QueryGroup}``, one entry per
    model in ``models``.

    Class attributes (a subclass may set them per instance):

    * ``models``: where the group is decoded, ``("student",)`` or ``("student", "teacher")``;
      queries fed to the teacher must have the teacher's width, those fed to the student the
      student's.
    * ``needs_teacher_output``: built from the teacher's output (then after the teacher ran,
      so it cannot run in the teacher).
    """

    models: tuple[str, ...] = ("student",)
    needs_teacher_output = False

    def forward(self, context: GroupContext) -> dict[str, QueryGroup]:
        raise NotImplementedError


class TeacherQueryGroup(QueryGroupBuilder):
    """The teacher's initial queries as a group of the student decoder: widths adapted by a
    :class:`QueryAdapter`, reference points kept ("teacher") or re-derived from the adapted
    positional queries by the student's own reference head ("student_head", the official
    DETRDistill code).

    Args:
        teacher_dim, student_dim: widths D_t and D_s.
        reference: "teacher" or "student_head".
    """

    models = ("student",)
    needs_teacher_output = True

    def __init__(self, *, teacher_dim: int, student_dim: int, reference: str = "teacher"):
        super().__init__()
        if reference not in TEACHER_QUERY_REFERENCES:
            raise ValueError(
                f"reference must be one of {TEACHER_QUERY_REFERENCES}, got {reference!r}"
            )
        self.adapter = QueryAdapter(teacher_dim=teacher_dim, student_dim=student_dim)
        self.reference = reference

    def forward(self, context: GroupContext) -> dict[str, QueryGroup]:
        output = context.teacher_output
        group = self.adapt(output.queries, context.student, context.teacher, output.encoder)
        return {"student": group}

    def adapt(
        self,
        teacher_queries: QueryGroup,
        student: nn.Module,
        teacher: nn.Module | None = None,
        teacher_encoder: EncoderOutputs | None = None,
    ) -> QueryGroup:
        """A teacher that derives positional queries from its anchors (DINO) hands over those of
        its first decoder layer; a student that does so (DINO) gets none.

        Args:
            teacher_queries: content/pos (B, Qt, D_t), reference (B, Qt, 2|4) or None.
            student: the student (its ``reference_from_pos`` for "student_head").
            teacher, teacher_encoder: the teacher and its encoder outputs (needed when the
                teacher derives its positional queries and the student uses them).

        Returns:
            QueryGroup with content (and pos) (B, Qt, D_s).
        """
        if (
            teacher_queries.pos is None
            and not student.positions_from_reference
            and teacher is not None
            and teacher.positions_from_reference
        ):
            if teacher_encoder is None:
                raise ValueError(
                    f"{type(teacher).__name__} derives its positional queries from its anchors "
                    "and the valid ratios of its encoder levels: pass teacher_encoder"
                )
            with torch.no_grad():
                pos = teacher.positional_queries(teacher_queries, teacher_encoder)
            teacher_queries = replace(teacher_queries, pos=pos)
        group = self.adapter(teacher_queries)
        if student.positions_from_reference:
            group = replace(group, pos=None)
        if self.reference == "student_head":
            if group.pos is None:
                raise ValueError(
                    'teacher_query_reference="student_head" needs positional queries from the '
                    "teacher, but it gives none"
                )
            group = QueryGroup(group.content, group.pos, student.reference_from_pos(group.pos))
        return group

    def extra_repr(self) -> str:
        return f"reference={self.reference!r}"


def default_group_builder(
    name: str, *, student: nn.Module, teacher: nn.Module, teacher_query_reference: str
) -> QueryGroupBuilder:
    """The builder of a known group name (used when ``model.group_builders`` gives none).

    Raises:
        KeyError: for a name without a default builder.
    """
    if name == TEACHER_QUERIES:
        return TeacherQueryGroup(
            teacher_dim=teacher.hidden_dim,
            student_dim=student.hidden_dim,
            reference=teacher_query_reference,
        )
    raise KeyError(
        f"no default builder for query group {name!r}; give one in "
        f"model.group_builders[{name!r}] (a QueryGroupBuilder)"
    )
