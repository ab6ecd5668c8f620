"""Deformable DETR (Zhu et al., 2021): multi-scale deformable attention, optional iterative box
refinement and two-stage query selection."""

from __future__ import annotations

import math

from detectron2.modeling import META_ARCH_REGISTRY
from torch import Tensor, nn

from ...layers import MLP, coordinate_sine_embedding
from ..outputs import EncoderOutputs, QueryGroup
from .base import DETRBase, sine_point_queries
from .proposals import select_proposals

__all__ = ["DeformableDETR"]


@META_ARCH_REGISTRY.register()
class DeformableDETR(DETRBase):
    """Deformable DETR with sigmoid focal classification.

    Single-stage: a learned (Q, 2D) table split into positional and content queries; reference
    points (x, y) come from a linear layer on the positional query. Two-stage: every encoder token
    proposes a box; the top-Q proposals give reference boxes and, through a sine embedding, the
    queries.
    """

    def __init__(
        self,
        *,
        num_queries: int = 300,
        hidden_dim: int = 256,
        with_box_refine: bool = False,
        as_two_stage: bool = False,
        **kwargs,
    ):
        """
        Args:
            num_queries, hidden_dim: see :class:`DETRBase`.
            with_box_refine: iterative box refinement (separate heads per layer).
            as_two_stage: queries from encoder proposals instead of a learned table.
            kwargs: everything else :class:`DETRBase` takes.
        """
        kwargs.setdefault("loss_class_type", "focal")
        kwargs.setdefault("share_heads", not with_box_refine)
        super().__init__(
            num_queries=num_queries,
            hidden_dim=hidden_dim,
            refine_boxes=with_box_refine,
            **kwargs,
        )
        self.with_box_refine = with_box_refine
        self.as_two_stage = as_two_stage
        if as_two_stage:
            num_logits = self.class_embed[0].out_features
            self.enc_output = nn.Linear(hidden_dim, hidden_dim)
            self.enc_output_norm = nn.LayerNorm(hidden_dim)
            self.enc_class_embed = nn.Linear(hidden_dim, num_logits)
            self.enc_bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)
            self.pos_trans = nn.Linear(hidden_dim * 2, hidden_dim * 2)
            self.pos_trans_norm = nn.LayerNorm(hidden_dim * 2)
            nn.init.constant_(self.enc_class_embed.bias, -math.log((1 - 0.01) / 0.01))
            nn.init.zeros_(self.enc_bbox_embed.layers[-1].weight)
            nn.init.zeros_(self.enc_bbox_embed.layers[-1].bias)
        else:
            self.query_embedding = nn.Embedding(num_queries, hidden_dim * 2)
            self.reference_points = nn.Linear(hidden_dim, 2)
            nn.init.xavier_uniform_(self.reference_points.weight, gain=1.0)
            nn.init.zeros_(self.reference_points.bias)

    def initial_queries(self, encoder: EncoderOutputs):
        batch = encoder.memory.shape[0]
        if not self.as_two_stage:
            pos, content = self.query_embedding.weight.split(self.hidden_dim, dim=1)
            pos = pos[None].expand(batch, -1, -1)
            content = content[None].expand(batch, -1, -1)
            return QueryGroup(content, pos, self.reference_from_pos(pos)), None
        return self._two_stage_queries(encoder)

    @property
    def has_reference_head(self) -> bool:
        return not self.as_two_stage

    def reference_from_pos(self, pos: Tensor) -> Tensor:
        if self.as_two_stage:
            return super().reference_from_pos(pos)
        return self.reference_points(pos).sigmoid()

    def _two_stage_queries(self, encoder: EncoderOutputs):
        top_logits, top_boxes = select_proposals(self, encoder)
        return self._proposal_queries(top_boxes.detach()), (top_logits, top_boxes)

    def _proposal_queries(self, boxes: Tensor) -> QueryGroup:
        """Two-stage queries of reference boxes (B or 1, Q, 4): positional and content queries
        from the boxes' sine embedding through ``pos_trans`` / ``pos_trans_norm``."""
        embedding = coordinate_sine_embedding(boxes, num_pos_feats=self.hidden_dim // 2)
        pos, content = self.pos_trans_norm(self.pos_trans(embedding)).split(self.hidden_dim, -1)
        return QueryGroup(content, pos, boxes)

    def queries_from_boxes(self, boxes: Tensor) -> QueryGroup:
        """Two-stage: the boxes as reference boxes, queries through the model's own proposal
        head (exactly how it turns its selected proposals into queries). Single-stage: the box
        centres as reference points, their sine embedding as positional queries, zero content
        (:func:`~detrdistill.modeling.meta_arch.base.sine_point_queries`; the model's own
        queries are a learned table with no map from boxes)."""
        if self.as_two_stage:
            return self._proposal_queries(boxes)
        return sine_point_queries(boxes, self.hidden_dim)
