"""Conditional DETR (Meng et al., 2021): conditional spatial queries from reference points."""

from __future__ import annotations

import torch
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..outputs import EncoderOutputs, QueryGroup
from .base import DETRBase, sine_point_queries

__all__ = ["ConditionalDETR"]


@META_ARCH_REGISTRY.register()
class ConditionalDETR(DETRBase):
    """Conditional DETR: learned positional queries, each mapped to an (x, y) reference point by
    the decoder's ``ref_point_head``; boxes are predicted relative to it. Sigmoid focal loss."""

    def __init__(self, *, num_queries: int = 300, hidden_dim: int = 256, **kwargs):
        """
        Args:
            num_queries, hidden_dim: see :class:`DETRBase`; the decoder must be a
                :class:`~detrdistill.modeling.transformers.ConditionalDecoder`.
            kwargs: everything else :class:`DETRBase` takes.
        """
        kwargs.setdefault("loss_class_type", "focal")
        super().__init__(num_queries=num_queries, hidden_dim=hidden_dim, **kwargs)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)

    @property
    def has_reference_head(self) -> bool:
        return True

    def reference_from_pos(self, pos):
        return self.decoder.reference_from_pos(pos)

    def initial_queries(self, encoder: EncoderOutputs):
        batch = encoder.memory.shape[0]
        pos = self.query_embed.weight[None].expand(batch, -1, -1)
        reference = self.reference_from_pos(pos)
        return QueryGroup(content=torch.zeros_like(pos), pos=pos, reference=reference), None

    def queries_from_boxes(self, boxes):
        """The box centres as reference points, their sine embedding as positional queries, zero
        content queries (:func:`~detrdistill.modeling.meta_arch.base.sine_point_queries`)."""
        return sine_point_queries(boxes, self.hidden_dim)
