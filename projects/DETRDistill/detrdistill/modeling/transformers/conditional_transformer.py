"""Decoders of Conditional DETR and DAB-DETR.

Both decouple content and spatial parts of the cross-attention query: the spatial part is a sine
embedding of a reference point (Conditional DETR: a fixed (x, y) per query) or of an anchor box
that every layer refines (DAB-DETR), modulated by the current content.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...layers import (
    MLP,
    ConditionalCrossAttention,
    ConditionalSelfAttention,
    coordinate_sine_embedding,
    inverse_sigmoid,
)
from .decoder_output import DecoderRawOutput, DecoderRecorder
from .layer_blocks import FFN, stack_layers

__all__ = ["ConditionalDecoder", "DabDecoder"]


class ConditionalDecoderLayer(nn.Module):
    """Conditional self-attention, conditional cross-attention and FFN, post-norm."""

    def __init__(self, dim, num_heads, ffn_dim, dropout, activation, keep_query_pos=False):
        super().__init__()
        self.self_attn = ConditionalSelfAttention(dim, num_heads, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = ConditionalCrossAttention(
            dim, num_heads, dropout=dropout, keep_query_pos=keep_query_pos
        )
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn_dim, dropout, activation)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        tgt,
        query_pos,
        query_sine_embed,
        memory,
        memory_pos,
        memory_mask,
        self_attn_mask,
        is_first,
        need_weights,
    ):
        attended, self_weights = self.self_attn(
            tgt, query_pos=query_pos, attn_mask=self_attn_mask, need_weights=need_weights
        )
        tgt = self.norm1(tgt + self.dropout(attended))
        attended, cross_weights = self.cross_attn(
            tgt,
            memory,
            key_pos=memory_pos,
            query_sine_embed=query_sine_embed,
            query_pos=query_pos,
            is_first=is_first,
            key_padding_mask=memory_mask,
            need_weights=need_weights,
        )
        tgt = self.norm2(tgt + self.dropout(attended))
        tgt = self.norm3(tgt + self.dropout(self.ffn(tgt)))
        return tgt, self_weights, cross_weights


def _drop_unused_query_pos_proj(layers: nn.ModuleList, keep_query_pos: bool) -> None:
    # Only the first layer adds the positional query to the content query in cross-attention;
    # removing the projection elsewhere keeps DDP free of unused parameters.
    if not keep_query_pos:
        for layer in layers[1:]:
            layer.cross_attn.query_pos_proj = None


class ConditionalDecoder(nn.Module):
    """Conditional DETR decoder: fixed (x, y) reference per query, spatial query modulated by
    ``query_scale(content)`` from the second layer on."""

    def __init__(
        self,
        *,
        dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        num_layers: int = 6,
        dropout: float = 0.1,
        activation: str = "relu",
        keep_query_pos: bool = False,
    ):
        super().__init__()
        self.layers = stack_layers(
            lambda: ConditionalDecoderLayer(
                dim, num_heads, ffn_dim, dropout, activation, keep_query_pos
            ),
            num_layers,
        )
        _drop_unused_query_pos_proj(self.layers, keep_query_pos)
        self.query_scale = MLP(dim, dim, dim, 2)
        self.ref_point_head = MLP(dim, dim, 2, 2)
        self.norm = nn.LayerNorm(dim)
        self.dim = dim
        self.num_layers = num_layers

    def reference_from_pos(self, pos: Tensor) -> Tensor:
        """(B, Q, D) positional queries -> (B, Q, 2) reference points in [0, 1]."""
        return self.ref_point_head(pos).sigmoid()

    def forward(
        self,
        *,
        content: Tensor,
        pos: Tensor,
        reference: Tensor,
        memory: Tensor,
        memory_mask: Tensor,
        memory_pos: Tensor,
        self_attn_mask: Tensor | None = None,
        return_attention: bool = False,
        **unused,
    ) -> DecoderRawOutput:
        """
        Args:
            content, pos: (B, Q, D); reference (B, Q, 2) in [0, 1].
            memory, memory_pos: (B, S, D); memory_mask (B, S) bool.
            self_attn_mask: (Q, Q) bool, True = blocked.
        """
        if pos is None or reference is None:
            raise ValueError("ConditionalDecoder needs QueryGroup.pos and QueryGroup.reference")
        center_embed = coordinate_sine_embedding(reference[..., :2], num_pos_feats=self.dim // 2)
        recorder, tgt = DecoderRecorder(return_attention), content
        for index, layer in enumerate(self.layers):
            scale = 1.0 if index == 0 else self.query_scale(tgt)
            tgt, self_w, cross_w = layer(
                tgt,
                pos,
                center_embed * scale,
                memory,
                memory_pos,
                memory_mask,
                self_attn_mask,
                index == 0,
                return_attention,
            )
            recorder.record(self.norm(tgt), self_w, cross_w)
        return recorder.output(reference[None].expand(self.num_layers, *reference.shape))


class DabDecoder(nn.Module):
    """DAB-DETR decoder: 4-D anchor boxes as queries, refined layer by layer.

    Each layer derives its positional query from the sine embedding of the current anchor, scales
    the spatial query by the content (``query_scale``) and modulates the x/y attention widths by
    the ratio of a predicted reference size to the anchor size (``ref_anchor_head``).
    """

    def __init__(
        self,
        *,
        dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        num_layers: int = 6,
        dropout: float = 0.0,
        activation: str = "prelu",
        keep_query_pos: bool = False,
        modulate_hw_attention: bool = True,
    ):
        super().__init__()
        self.layers = stack_layers(
            lambda: ConditionalDecoderLayer(
                dim, num_heads, ffn_dim, dropout, activation, keep_query_pos
            ),
            num_layers,
        )
        _drop_unused_query_pos_proj(self.layers, keep_query_pos)
        self.query_scale = MLP(dim, dim, dim, 2)
        self.ref_point_head = MLP(2 * dim, dim, dim, 2)
        self.ref_anchor_head = MLP(dim, dim, 2, 2) if modulate_hw_attention else None
        self.norm = nn.LayerNorm(dim)
        self.dim = dim
        self.num_layers = num_layers

    def forward(
        self,
        *,
        content: Tensor,
        reference: Tensor,
        memory: Tensor,
        memory_mask: Tensor,
        memory_pos: Tensor,
        self_attn_mask: Tensor | None = None,
        return_attention: bool = False,
        box_refiner: nn.ModuleList | None = None,
        **unused,
    ) -> DecoderRawOutput:
        """
        Args:
            content: (B, Q, D); reference (B, Q, 4) anchor boxes (cx, cy, w, h) in [0, 1].
            memory, memory_pos: (B, S, D); memory_mask (B, S) bool.
            self_attn_mask: (Q, Q) bool, True = blocked.
            box_refiner: per-layer box heads that update the anchors after each layer.
        """
        if reference is None or reference.shape[-1] != 4:
            raise ValueError("DabDecoder needs QueryGroup.reference of shape (B, Q, 4)")
        half = self.dim // 2
        recorder, tgt = DecoderRecorder(return_attention), content
        for index, layer in enumerate(self.layers):
            input_reference = reference
            sine = coordinate_sine_embedding(reference, num_pos_feats=half)  # (B, Q, 2D)
            query_pos = self.ref_point_head(sine)
            scale = 1.0 if index == 0 else self.query_scale(tgt)
            spatial = sine[..., : self.dim] * scale  # (y, x) parts
            if self.ref_anchor_head is not None:
                size = self.ref_anchor_head(tgt).sigmoid()  # (B, Q, 2) = (w, h)
                spatial = torch.cat(
                    [
                        spatial[..., :half] * (size[..., 1] / reference[..., 3]).unsqueeze(-1),
                        spatial[..., half:] * (size[..., 0] / reference[..., 2]).unsqueeze(-1),
                    ],
                    -1,
                )
            tgt, self_w, cross_w = layer(
                tgt,
                query_pos,
                spatial,
                memory,
                memory_pos,
                memory_mask,
                self_attn_mask,
                index == 0,
                return_attention,
            )
            recorder.record(self.norm(tgt), self_w, cross_w, input_reference)
            if box_refiner is not None:
                updated = box_refiner[index](tgt) + inverse_sigmoid(reference)
                reference = updated.sigmoid().detach()
        return recorder.output()
