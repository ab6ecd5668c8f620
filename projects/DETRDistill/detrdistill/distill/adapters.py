"""Learned adapters between a teacher and a student of different widths."""

from __future__ import annotations

from torch import nn

from ..modeling.outputs import QueryGroup

__all__ = ["QueryAdapter"]


class QueryAdapter(nn.Module):
    """Maps a teacher's initial queries (width D_t) into the student's width D_s.

    The teacher-query group of DETRDistill's query-prior distillation and D3ETR's fixed matching
    feeds the teacher's queries to the student decoder; when widths differ, content and
    positional queries each go through a Linear layer, initialised as a rectangular identity
    (the first min(D_t, D_s) channels pass unchanged, the rest are 0) with zero bias, so that at
    the start the student sees the teacher's query prior itself rather than a random mix of it.
    Reference points/anchors are width-free and pass through unchanged. With equal widths the
    adapter is the identity and has no parameters.
    """

    def __init__(self, *, teacher_dim: int, student_dim: int):
        super().__init__()
        self.teacher_dim = teacher_dim
        self.student_dim = student_dim
        if teacher_dim != student_dim:
            self.content = nn.Linear(teacher_dim, student_dim)
            self.pos = nn.Linear(teacher_dim, student_dim)
            for layer in (self.content, self.pos):
                nn.init.eye_(layer.weight)
                nn.init.zeros_(layer.bias)
        else:
            self.content = self.pos = None

    def forward(self, queries: QueryGroup) -> QueryGroup:
        """
        Args:
            queries: teacher queries, content/pos (B, Q, D_t), reference (B, Q, 2|4) or None.

        Returns:
            QueryGroup with content/pos (B, Q, D_s).
        """
        queries = queries.detach()
        if queries.content.shape[-1] != self.teacher_dim:
            raise ValueError(
                f"teacher queries have width {queries.content.shape[-1]}, but the query adapter "
                f"was built for teacher_dim={self.teacher_dim} (model.teacher.hidden_dim)"
            )
        if self.content is None:
            return queries
        pos = None if queries.pos is None else self.pos(queries.pos)
        return QueryGroup(self.content(queries.content), pos, queries.reference)
