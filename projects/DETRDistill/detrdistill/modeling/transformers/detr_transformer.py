"""DETR's transformer: post-norm encoder and decoder with additive positional encodings."""

from __future__ import annotations

from torch import Tensor, nn

from ...layers import MLP, MultiheadAttention
from .decoder_output import DecoderRawOutput, DecoderRecorder
from .layer_blocks import FFN, stack_layers

__all__ = ["DetrEncoder", "DetrDecoder"]


class DetrEncoderLayer(nn.Module):
    """Self-attention (q = k = x + pos) and FFN, each followed by residual + LayerNorm."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, activation: str):
        super().__init__()
        self.self_attn = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn_dim, dropout, activation)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: Tensor, pos: Tensor, mask: Tensor, pos_scale: Tensor | None = None):
        query_pos = pos if pos_scale is None else pos * pos_scale
        q = src + query_pos
        attended, _ = self.self_attn(q, q, src, key_padding_mask=mask)
        src = self.norm1(src + self.dropout(attended))
        return self.norm2(src + self.dropout(self.ffn(src)))


class DetrEncoder(nn.Module):
    """Stack of :class:`DetrEncoderLayer` over flattened (single- or multi-level) tokens.

    With ``scale_pos_by_content`` (DAB-DETR) the positional encoding of each layer is modulated
    by an MLP of the current tokens.
    """

    def __init__(
        self,
        *,
        dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        num_layers: int = 6,
        dropout: float = 0.1,
        activation: str = "relu",
        scale_pos_by_content: bool = False,
    ):
        super().__init__()
        self.layers = stack_layers(
            lambda: DetrEncoderLayer(dim, num_heads, ffn_dim, dropout, activation), num_layers
        )
        self.num_layers = num_layers
        if scale_pos_by_content:
            self.query_scale = MLP(dim, dim, dim, 2)
        else:
            self.query_scale = None

    def forward(self, *, src: Tensor, pos: Tensor, mask: Tensor, **unused) -> Tensor:
        """
        Args:
            src: (B, S, D) flattened features.
            pos: (B, S, D) positional encodings.
            mask: (B, S) bool, True on padding.

        Returns:
            (B, S, D) memory.
        """
        for layer in self.layers:
            scale = None if self.query_scale is None else self.query_scale(src)
            src = layer(src, pos, mask, scale)
        return src


class DetrDecoderLayer(nn.Module):
    """Self-attention, cross-attention to memory and FFN, post-norm (DETR)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, activation: str):
        super().__init__()
        self.self_attn = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn_dim, dropout, activation)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, tgt, query_pos, memory, memory_pos, memory_mask, self_attn_mask, need_weights
    ):
        q = tgt + query_pos
        attended, self_weights = self.self_attn(
            q, q, tgt, attn_mask=self_attn_mask, need_weights=need_weights
        )
        tgt = self.norm1(tgt + self.dropout(attended))
        attended, cross_weights = self.cross_attn(
            tgt + query_pos,
            memory + memory_pos,
            memory,
            key_padding_mask=memory_mask,
            need_weights=need_weights,
        )
        tgt = self.norm2(tgt + self.dropout(attended))
        tgt = self.norm3(tgt + self.dropout(self.ffn(tgt)))
        return tgt, self_weights, cross_weights


class DetrDecoder(nn.Module):
    """DETR decoder; every layer's output goes through a shared final LayerNorm."""

    def __init__(
        self,
        *,
        dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        num_layers: int = 6,
        dropout: float = 0.1,
        activation: str = "relu",
    ):
        super().__init__()
        self.layers = stack_layers(
            lambda: DetrDecoderLayer(dim, num_heads, ffn_dim, dropout, activation), num_layers
        )
        self.norm = nn.LayerNorm(dim)
        self.num_layers = num_layers

    def forward(
        self,
        *,
        content: Tensor,
        pos: Tensor,
        memory: Tensor,
        memory_mask: Tensor,
        memory_pos: Tensor,
        self_attn_mask: Tensor | None = None,
        return_attention: bool = False,
        **unused,
    ) -> DecoderRawOutput:
        """
        Args:
            content: (B, Q, D) initial content queries.
            pos: (B, Q, D) positional queries.
            memory: (B, S, D); memory_mask (B, S) bool; memory_pos (B, S, D).
            self_attn_mask: (Q, Q) bool, True = blocked (query groups).
            return_attention: also return attention weights.
        """
        if pos is None:
            raise ValueError("DetrDecoder needs positional queries (QueryGroup.pos)")
        recorder, tgt = DecoderRecorder(return_attention), content
        for layer in self.layers:
            tgt, self_w, cross_w = layer(
                tgt, pos, memory, memory_pos, memory_mask, self_attn_mask, return_attention
            )
            recorder.record(self.norm(tgt), self_w, cross_w)
        return recorder.output()
