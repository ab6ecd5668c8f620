"""DETR (Carion et al., 2020): learned positional queries, softmax classification."""

from __future__ import annotations

import torch
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..outputs import EncoderOutputs, QueryGroup
from .base import DETRBase

__all__ = ["DETR"]


@META_ARCH_REGISTRY.register()
class DETR(DETRBase):
    """DETR: zero content queries, learned positional queries, no reference points.

    Classification is a softmax over ``num_classes + 1`` (no-object) by default.
    """

    def __init__(self, *, num_queries: int = 100, hidden_dim: int = 256, **kwargs):
        """
        Args:
            num_queries, hidden_dim: see :class:`DETRBase`.
            kwargs: everything else :class:`DETRBase` takes; ``loss_class_type`` defaults to
                "softmax".
        """
        kwargs.setdefault("loss_class_type", "softmax")
        super().__init__(num_queries=num_queries, hidden_dim=hidden_dim, **kwargs)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)

    def initial_queries(self, encoder: EncoderOutputs):
        batch = encoder.memory.shape[0]
        pos = self.query_embed.weight[None].expand(batch, -1, -1)
        return QueryGroup(content=torch.zeros_like(pos), pos=pos), None
