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
    "GENERAL_POINTS",
    "MODELS",
    "SPECIFIC_POINTS",
    "TEACHER_QUERIES",
    "GeneralPoints",
    "GroupContext",
    "QueryGroupBuilder",
    "SpecificPoints",
    "TeacherQueryGroup",
    "default_group_builder",
]

#: The models a group can run in.
MODELS = ("student", "teacher")
#: The teacher's initial queries decoded by the student (DETRDistill (c), D3ETR fixed matching).
TEACHER_QUERIES = "teacher_queries"
TEACHER_QUERY_REFERENCES = ("student_head", "teacher")
#: KD-DETR's distillation points: the teacher's own queries decoded by the student ...
SPECIFIC_POINTS = "kd_specific_points"
#: ... and random boxes decoded by both models.
GENERAL_POINTS = "kd_general_points"
POINT_DISTRIBUTIONS = ("uniform", "sigmoid_normal")
SPECIFIC_POINT_FORMS = ("boxes", "queries")


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

    def check_pair(self, student: nn.Module, teacher: nn.Module) -> None:
        """Raise ValueError, naming what is missing, when this pair of detectors cannot decode
        the group (the wrapper calls it once, at construction). Default: no check."""

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


def _require_box_queries(model: nn.Module, role: str, what: str) -> None:
    if not getattr(model, "has_box_queries", False):
        raise ValueError(
            f"{what}: the {role} ({type(model).__name__}) has no query form for boxes "
            "(DETRBase.queries_from_boxes): a detector without reference points or anchors "
            "cannot share distillation points"
        )


class GeneralPoints(QueryGroupBuilder):
    """KD-DETR's general distillation points: ``num_points`` random boxes, drawn anew every
    training step, shared by the images of the batch and decoded by the teacher and the student
    alike, each in its own query form (:meth:`DETRBase.queries_from_boxes`: DAB-DETR anchors
    with zero content; two-stage Deformable DETR's proposal head; the box centres and their
    sine embedding for models with (x, y) reference points). The teacher's outputs on them are
    the student's targets.

    Args:
        num_points: boxes per step (the official code: 300).
        distribution: of the (cx, cy, w, h) coordinates: "uniform" in [0, 1) (the paper:
            "randomly initialize a set of object queries on a uniform distribution") or
            "sigmoid_normal", sigmoid of N(0, 1) (the official code: a fresh
            ``nn.Embedding(300, 4)`` weight through the decoder's sigmoid).
    """

    models = ("student", "teacher")

    def __init__(self, *, num_points: int = 300, distribution: str = "uniform"):
        super().__init__()
        if not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f"num_points must be a positive int, got {num_points!r}")
        if distribution not in POINT_DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {POINT_DISTRIBUTIONS}, got {distribution!r}"
            )
        self.num_points = num_points
        self.distribution = distribution

    def check_pair(self, student: nn.Module, teacher: nn.Module) -> None:
        for role, model in (("student", student), ("teacher", teacher)):
            _require_box_queries(model, role, "KD-DETR general points")

    def sample(self, device: torch.device) -> torch.Tensor:
        """(1, num_points, 4) random normalised (cx, cy, w, h) boxes from the global RNG."""
        shape = (1, self.num_points, 4)
        if self.distribution == "uniform":
            return torch.rand(shape, device=device)
        return torch.randn(shape, device=device).sigmoid()

    def forward(self, context: GroupContext) -> dict[str, QueryGroup]:
        boxes = self.sample(context.student.device)
        with torch.no_grad():
            teacher_queries = context.teacher.queries_from_boxes(boxes)
        return {
            "student": context.student.queries_from_boxes(boxes),
            "teacher": teacher_queries,
        }

    def extra_repr(self) -> str:
        return f"num_points={self.num_points}, distribution={self.distribution!r}"


class SpecificPoints(QueryGroupBuilder):
    """KD-DETR's specific distillation points: the teacher's own initial queries, decoded by the
    student. The teacher's outputs on them are its own detection outputs (the group does not
    interact with other queries, so decoding the same queries again would give the same), as in
    the official code, where the teacher runs once and the student decodes the teacher's anchor
    table.

    Forms of the points in the student:

    * ``"boxes"``: the teacher's reference boxes (DAB-DETR anchors, two-stage Deformable DETR's
      selected proposals) through the student's :meth:`DETRBase.queries_from_boxes`; the
      teacher must have 4-d references.
    * ``"queries"``: the teacher's content/positional queries and references themselves, widths
      adapted by a :class:`QueryAdapter` (teachers whose queries are learned positional
      embeddings with (x, y) reference points: single-stage Deformable DETR, Conditional DETR;
      the student needs the same query form).

    Args:
        form: "boxes" or "queries".
        teacher_dim, student_dim: widths D_t and D_s (``form="queries"`` only).
    """

    models = ("student",)
    needs_teacher_output = True

    def __init__(
        self,
        *,
        form: str = "boxes",
        teacher_dim: int | None = None,
        student_dim: int | None = None,
    ):
        super().__init__()
        if form not in SPECIFIC_POINT_FORMS:
            raise ValueError(f"form must be one of {SPECIFIC_POINT_FORMS}, got {form!r}")
        self.form = form
        self.adapter = None
        if form == "queries":
            if teacher_dim is None or student_dim is None:
                raise ValueError('form="queries" needs teacher_dim and student_dim')
            self.adapter = QueryAdapter(teacher_dim=teacher_dim, student_dim=student_dim)

    def check_pair(self, student: nn.Module, teacher: nn.Module) -> None:
        what = "KD-DETR specific points"
        if self.form == "queries":
            if teacher.has_reference_head != student.has_reference_head:
                raise ValueError(
                    f'{what} with form="queries": the teacher ({type(teacher).__name__}) and the '
                    f"student ({type(student).__name__}) have different query forms (positional "
                    "queries with (x, y) reference points in one, not in the other); use "
                    'form="boxes" with a teacher whose queries carry boxes'
                )
            return
        _require_box_queries(student, "student", what)
        _require_box_queries(teacher, "teacher", what)
        if teacher.has_reference_head:
            raise ValueError(
                f'{what} with form="boxes": the teacher ({type(teacher).__name__}) has (x, y) '
                "reference points from learned positional queries, not boxes; use "
                'SpecificPoints(form="queries") with a student of the same query form, or '
                "general points only"
            )

    def forward(self, context: GroupContext) -> dict[str, QueryGroup]:
        queries = context.teacher_output.queries.detach()
        if self.form == "queries":
            return {"student": self.adapter(queries)}
        reference = queries.reference
        if reference is None or reference.shape[-1] != 4:
            got = "none" if reference is None else f"shape {tuple(reference.shape)}"
            raise ValueError(
                f'KD-DETR specific points with form="boxes" need the teacher\'s 4-d reference '
                f"boxes, but its queries have {got}"
            )
        return {"student": context.student.queries_from_boxes(reference)}

    def extra_repr(self) -> str:
        return f"form={self.form!r}"


def default_group_builder(
    name: str, *, student: nn.Module, teacher: nn.Module, teacher_query_reference: str
) -> QueryGroupBuilder:
    """The builder of a known group name (used when ``model.group_builders`` gives none):
    ``"teacher_queries"``, and KD-DETR's ``"kd_general_points"`` (300 uniform boxes) and
    ``"kd_specific_points"`` (form "queries" for teachers with (x, y) reference points from
    positional queries, else "boxes").

    Raises:
        KeyError: for a name without a default builder.
    """
    if name == TEACHER_QUERIES:
        return TeacherQueryGroup(
            teacher_dim=teacher.hidden_dim,
            student_dim=student.hidden_dim,
            reference=teacher_query_reference,
        )
    if name == GENERAL_POINTS:
        return GeneralPoints()
    if name == SPECIFIC_POINTS:
        if teacher.has_reference_head:
            return SpecificPoints(
                form="queries", teacher_dim=teacher.hidden_dim, student_dim=student.hidden_dim
            )
        return SpecificPoints(form="boxes")
    raise KeyError(
        f"no default builder for query group {name!r}; give one in "
        f"model.group_builders[{name!r}] (a QueryGroupBuilder)"
    )
