"""Deformable DETR's transformer: multi-scale deformable attention encoder and decoder."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...layers import MultiheadAttention, MultiScaleDeformableAttention, inverse_sigmoid
from .decoder_output import DecoderRawOutput, DecoderRecorder, stack_or_none
from .layer_blocks import FFN, stack_layers

__all__ = ["DeformableEncoder", "DeformableDecoder", "encoder_reference_points"]


def encoder_reference_points(spatial_shapes: Tensor, valid_ratios: Tensor) -> Tensor:
    """Centre of every memory token, normalised by the valid (unpadded) extent of its level.

    Args:
        spatial_shapes: (Lv, 2) long (H, W).
        valid_ratios: (B, Lv, 2) valid (w, h) fraction of each level.

    Returns:
        (B, S, Lv, 2) (x, y) reference of each token, projected into every level.
    """
    points = []
    for level, (height, width) in enumerate(spatial_shapes.tolist()):
        ys, xs = torch.meshgrid(
            torch.arange(height, dtype=torch.float32, device=valid_ratios.device) + 0.5,
            torch.arange(width, dtype=torch.float32, device=valid_ratios.device) + 0.5,
            indexing="ij",
        )
        x = xs.reshape(1, -1) / (valid_ratios[:, level, 0:1] * width)
        y = ys.reshape(1, -1) / (valid_ratios[:, level, 1:2] * height)
        points.append(torch.stack([x, y], -1))
    reference = torch.cat(points, 1)
    return reference[:, :, None] * valid_ratios[:, None]


def scale_reference_to_levels(reference: Tensor, valid_ratios: Tensor) -> Tensor:
    """(B, Q, 2|4) normalised reference -> (B, Q, Lv, 2|4) in each level's padded frame."""
    ratios = valid_ratios if reference.shape[-1] == 2 else torch.cat([valid_ratios] * 2, -1)
    return reference[:, :, None] * ratios[:, None]


class DeformableEncoderLayer(nn.Module):
    def __init__(self, dim, num_heads, ffn_dim, dropout, activation, num_levels, num_points):
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(
            embed_dim=dim,
            num_heads=num_heads,
            num_levels=num_levels,
            num_points=num_points,
            dropout=0.0,  # the layer applies its own dropout to the residual branch
        )
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn_dim, dropout, activation)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src, pos, reference, spatial_shapes, level_start_index, mask):
        attended, _ = self.self_attn(
            src + pos, reference, src, spatial_shapes, level_start_index, mask
        )
        src = self.norm1(src + self.dropout(attended))
        return self.norm2(src + self.dropout(self.ffn(src)))


class DeformableEncoder(nn.Module):
    """Deformable self-attention over all feature levels, with learned level embeddings."""

    def __init__(
        self,
        *,
        dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 1024,
        num_layers: int = 6,
        dropout: float = 0.1,
        activation: str = "relu",
        num_levels: int = 4,
        num_points: int = 4,
    ):
        super().__init__()
        self.layers = stack_layers(
            lambda: DeformableEncoderLayer(
                dim, num_heads, ffn_dim, dropout, activation, num_levels, num_points
            ),
            num_layers,
        )
        self.level_embed = nn.Parameter(torch.empty(num_levels, dim).normal_())
        self.num_layers = num_layers
        self.num_levels = num_levels

    def forward(
        self,
        *,
        src: Tensor,
        pos: Tensor,
        mask: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        valid_ratios: Tensor,
    ) -> Tensor:
        """
        Args:
            src: (B, S, D) flattened multi-level features; pos (B, S, D); mask (B, S) bool.
            spatial_shapes: (Lv, 2); level_start_index (Lv,); valid_ratios (B, Lv, 2).

        Returns:
            (B, S, D) memory.
        """
        if spatial_shapes.shape[0] != self.num_levels:
            raise ValueError(
                f"DeformableEncoder was built for {self.num_levels} levels (num_levels) but got "
                f"{spatial_shapes.shape[0]} feature levels; check model.neck"
            )
        level_of_token = torch.repeat_interleave(
            torch.arange(self.num_levels, device=src.device), spatial_shapes.prod(1)
        )
        pos = pos + self.level_embed[level_of_token].to(pos.dtype)
        reference = encoder_reference_points(spatial_shapes, valid_ratios)
        for layer in self.layers:
            src = layer(src, pos, reference, spatial_shapes, level_start_index, mask)
        return src


class DeformableDecoderLayer(nn.Module):
    """Self-attention, deformable cross-attention and FFN, each with residual + LayerNorm."""

    def __init__(self, dim, num_heads, ffn_dim, dropout, activation, num_levels, num_points):
        super().__init__()
        self.self_attn = MultiheadAttention(dim, num_heads, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = MultiScaleDeformableAttention(
            embed_dim=dim,
            num_heads=num_heads,
            num_levels=num_levels,
            num_points=num_points,
            dropout=0.0,  # the layer applies its own dropout to the residual branch
        )
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, ffn_dim, dropout, activation)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        tgt,
        pos,
        reference,
        memory,
        memory_mask,
        spatial_shapes,
        level_start_index,
        self_attn_mask,
        need_weights,
    ):
        q = tgt + pos
        attended, self_weights = self.self_attn(
            q, q, tgt, attn_mask=self_attn_mask, need_weights=need_weights
        )
        tgt = self.norm1(tgt + self.dropout(attended))
        attended, cross_weights = self.cross_attn(
            tgt + pos,
            reference,
            memory,
            spatial_shapes,
            level_start_index,
            memory_mask,
            need_weights=need_weights,
        )
        tgt = self.norm2(tgt + self.dropout(attended))
        tgt = self.norm3(tgt + self.dropout(self.ffn(tgt)))
        return tgt, self_weights, cross_weights


class DeformableDecoder(nn.Module):
    """Deformable DETR decoder with optional iterative box refinement.

    Reference points are (x, y) for single-stage models and (cx, cy, w, h) boxes for two-stage
    models or when refining boxes; with refinement, each layer's box head updates them.
    """

    def __init__(
        self,
        *,
        dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 1024,
        num_layers: int = 6,
        dropout: float = 0.1,
        activation: str = "relu",
        num_levels: int = 4,
        num_points: int = 4,
    ):
        super().__init__()
        self.layers = stack_layers(
            lambda: DeformableDecoderLayer(
                dim, num_heads, ffn_dim, dropout, activation, num_levels, num_points
            ),
            num_layers,
        )
        self.num_layers = num_layers

    def forward(
        self,
        *,
        content: Tensor,
        pos: Tensor,
        reference: Tensor,
        memory: Tensor,
        memory_mask: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        valid_ratios: Tensor,
        self_attn_mask: Tensor | None = None,
        return_attention: bool = False,
        box_refiner: nn.ModuleList | None = None,
        **unused,
    ) -> DecoderRawOutput:
        """
        Args:
            content, pos: (B, Q, D) queries; reference (B, Q, 2|4) in [0, 1].
            memory: (B, S, D); memory_mask (B, S) bool; spatial_shapes (Lv, 2);
                level_start_index (Lv,); valid_ratios (B, Lv, 2).
            self_attn_mask: (Q, Q) bool, True = blocked.
            box_refiner: per-layer box heads; when given, layer l's output refines the
                reference of layer l + 1 (detached, as in Deformable DETR).
        """
        if pos is None or reference is None:
            raise ValueError("DeformableDecoder needs QueryGroup.pos and QueryGroup.reference")
        recorder, tgt = DecoderRecorder(return_attention), content
        for index, layer in enumerate(self.layers):
            input_reference = reference
            tgt, self_w, cross_w = layer(
                tgt,
                pos,
                scale_reference_to_levels(reference, valid_ratios),
                memory,
                memory_mask,
                spatial_shapes,
                level_start_index,
                self_attn_mask,
                return_attention,
            )
            recorder.record(tgt, self_w, cross_w, input_reference)
            if box_refiner is not None:
                delta = box_refiner[index](tgt)
                if reference.shape[-1] == 4:
                    reference = (delta + inverse_sigmoid(reference)).sigmoid().detach()
                else:
                    # As in Deformable DETR, a point reference becomes a box after the first
                    # refinement: the centre is refined, the size is the head's prediction.
                    xy = delta[..., :2] + inverse_sigmoid(reference)
                    reference = torch.cat([xy, delta[..., 2:]], -1).sigmoid().detach()
        return recorder.output(_stack_references(recorder.references))


def _stack_references(references: list[Tensor]) -> Tensor | None:
    """Stack per-layer references; when point (x, y) and box references are mixed (single-stage
    box refinement), points are written as (x, y, 0.5, 0.5): ``inverse_sigmoid(0.5) == 0``, so
    the box head's size output is used unchanged for them, exactly as for a point reference."""
    if references and len({ref.shape[-1] for ref in references}) > 1:
        references = [
            torch.cat([ref, torch.full_like(ref, 0.5)], -1) if ref.shape[-1] == 2 else ref
            for ref in references
        ]
    return stack_or_none(references)
