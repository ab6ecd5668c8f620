"""DAB-DETR (Liu et al., 2022): dynamic anchor boxes as queries."""

from __future__ import annotations

import torch
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..outputs import EncoderOutputs, QueryGroup
from .base import DETRBase

__all__ = ["DABDETR"]


@META_ARCH_REGISTRY.register()
class DABDETR(DETRBase):
    """DAB-DETR: learned 4-D anchor boxes (``anchor_box_embed``) refined by every decoder layer
    with a shared box head; zero content queries; sigmoid focal loss. Accepts ``denoising=``
    (DN-DETR / DINO denoising queries in training, see :mod:`detrdistill.modeling.denoising`)."""

    supports_denoising = True

    def __init__(
        self,
        *,
        num_queries: int = 300,
        hidden_dim: int = 256,
        random_anchor_centers: bool = False,
        **kwargs,
    ):
        """
        Args:
            num_queries, hidden_dim: see :class:`DETRBase`; the decoder must be a
                :class:`~detrdistill.modeling.transformers.DabDecoder`.
            random_anchor_centers: initialise anchor centres uniformly in [0, 1] and keep them
                fixed (DAB-DETR's ``random_refpoints_xy``); sizes stay learnable.
            kwargs: everything else :class:`DETRBase` takes, e.g. ``denoising`` (default None:
                off).
        """
        kwargs.setdefault("loss_class_type", "focal")
        kwargs.setdefault("refine_boxes", True)
        super().__init__(num_queries=num_queries, hidden_dim=hidden_dim, **kwargs)
        self.anchor_box_embed = nn.Embedding(num_queries, 4)
        self.random_anchor_centers = random_anchor_centers
        if random_anchor_centers:
            # Fixed centres live in a buffer: the optimizer (and weight decay) never sees them.
            self.register_buffer("anchor_centers", torch.rand(num_queries, 2))

    def initial_queries(self, encoder: EncoderOutputs):
        batch = encoder.memory.shape[0]
        anchors = self.anchor_box_embed.weight.sigmoid()
        if self.random_anchor_centers:
            anchors = torch.cat([self.anchor_centers, anchors[:, 2:]], -1)
        anchors = anchors[None].expand(batch, -1, -1)
        content = anchors.new_zeros(batch, anchors.shape[1], self.hidden_dim)
        return QueryGroup(content=content, pos=None, reference=anchors), None
