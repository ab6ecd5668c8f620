"""Multi-scale deformable attention (Deformable DETR) in pure PyTorch.

No compiled operator is used: every level is sampled with one
:func:`torch.nn.functional.grid_sample` call (bilinear, ``align_corners=False``, zero padding),
which runs on CPU and GPU alike. Sampling locations are normalised to [0, 1] per level, with
(0, 0) the top-left corner of the top-left pixel and (1, 1) the bottom-right corner of the
bottom-right pixel, so pixel ``(i, j)`` of a ``H x W`` level has its centre at
``((j + 0.5) / W, (i + 0.5) / H)``.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "DeformableAttentionWeights",
    "multi_scale_deformable_attention",
    "MultiScaleDeformableAttention",
    "deformable_weights_to_dense",
]


@dataclass
class DeformableAttentionWeights:
    """Sparse attention of a deformable attention layer.

    Attributes:
        sampling_locations: Tensor of shape (B, Q, H, Lv, P, 2), ``(x, y)`` normalised to [0, 1].
        attention_weights: Tensor of shape (B, Q, H, Lv, P); sums to 1 over (Lv, P).
    """

    sampling_locations: Tensor
    attention_weights: Tensor


def _level_sizes(spatial_shapes: Tensor) -> list[tuple[int, int]]:
    return [(int(h), int(w)) for h, w in spatial_shapes.tolist()]


def multi_scale_deformable_attention(
    value: Tensor,
    spatial_shapes: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Weighted sum of bilinearly sampled values over levels and points.

    Args:
        value: Tensor of shape (B, S, H, Dh), the flattened levels concatenated along S.
        spatial_shapes: Long tensor of shape (Lv, 2) with ``(H_l, W_l)``; sum of ``H_l * W_l``
            must equal S.
        sampling_locations: Tensor of shape (B, Q, H, Lv, P, 2), ``(x, y)`` in [0, 1];
            locations outside sample zeros.
        attention_weights: Tensor of shape (B, Q, H, Lv, P).

    Returns:
        Tensor of shape (B, Q, H * Dh).
    """
    bsz, _, heads, head_dim = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    sizes = _level_sizes(spatial_shapes)
    # grid_sample needs one dtype; keep the (usually fp32) precision of the locations
    dtype = torch.promote_types(value.dtype, sampling_locations.dtype)
    value, sampling_locations = value.to(dtype), sampling_locations.to(dtype)
    values = value.split([h * w for h, w in sizes], dim=1)
    grids = 2 * sampling_locations - 1  # grid_sample wants [-1, 1]
    sampled = []
    for lvl, (h, w) in enumerate(sizes):
        # (B, h*w, H, Dh) -> (B*H, Dh, h, w)
        v = values[lvl].flatten(2).transpose(1, 2).reshape(bsz * heads, head_dim, h, w)
        # (B, Q, H, P, 2) -> (B*H, Q, P, 2)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        )  # (B*H, Dh, Q, P)
    sampled = torch.stack(sampled, dim=-2).flatten(-2)  # (B*H, Dh, Q, Lv*P)
    attn = attention_weights.transpose(1, 2).reshape(
        bsz * heads, 1, num_queries, num_levels * num_points
    )
    out = (sampled * attn).sum(-1)  # (B*H, Dh, Q)
    return out.view(bsz, heads * head_dim, num_queries).transpose(1, 2)


class MultiScaleDeformableAttention(nn.Module):
    """Multi-scale deformable attention module (Zhu et al., Deformable DETR).

    Each query predicts, per head, level and point, a sampling offset (``sampling_offsets``) around
    its reference and an attention weight (``attention_weights``, softmax over levels x points).
    Values come from ``value_proj`` and the result goes through ``output_proj``. No residual is
    added; ``dropout`` is applied to the output (the caller adds the residual).

    Args:
        embed_dim: Model width D.
        num_heads: Number of heads H (must divide D).
        num_levels: Number of feature levels Lv.
        num_points: Sampling points per head and level P.
        dropout: Dropout on the output (training only).
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        num_levels: int = 4,
        num_points: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR initialisation.

        Offsets start at zero weight and a bias that points head ``h`` in direction
        ``2*pi*h/H`` (normalised so the larger component is 1), with point ``p`` at distance
        ``p + 1``; attention weights start uniform (zero weight and bias).
        """
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2 * math.pi / self.num_heads)
        directions = torch.stack((thetas.cos(), thetas.sin()), dim=-1)  # (H, 2)
        directions = directions / directions.abs().max(dim=-1, keepdim=True).values
        scales = torch.arange(1, self.num_points + 1, dtype=torch.float32)  # (P,)
        bias = directions[:, None, None, :] * scales[None, None, :, None]  # (H, 1, P, 2)
        bias = bias.expand(self.num_heads, self.num_levels, self.num_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for layer in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor | None = None,
        value_padding_mask: Tensor | None = None,
        need_weights: bool = False,
        *,
        query_pos: Tensor | None = None,
    ) -> tuple[Tensor, DeformableAttentionWeights | None]:
        """
        Args:
            query: Tensor of shape (B, Q, D).
            reference_points: Tensor of shape (B, Q, Lv, 2) with ``(x, y)`` in [0, 1] (offsets
                are normalised by each level's ``(W, H)``), or (B, Q, Lv, 4) with
                ``(cx, cy, w, h)`` (offsets are scaled by ``wh / P * 0.5``).
            value: Tensor of shape (B, S, D), flattened multi-level memory.
            spatial_shapes: Long tensor (Lv, 2) with ``(H_l, W_l)``.
            level_start_index: Long tensor (Lv,). Unused by the PyTorch kernel (derived from
                ``spatial_shapes``); accepted for interface compatibility.
            value_padding_mask: Optional bool (B, S), True = padding (its values are zeroed).
            need_weights: Also return the sampling locations and attention weights.
            query_pos: Optional (B, Q, D) added to ``query`` (not to the value).

        Returns:
            tuple: ``out`` (B, Q, D) and :class:`DeformableAttentionWeights` or None.
        """
        del level_start_index  # derived from spatial_shapes where needed
        if query_pos is not None:
            query = query + query_pos
        bsz, num_queries, _ = query.shape
        num_values = value.shape[1]
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        if spatial_shapes.shape[0] != levels:
            raise ValueError(f"expected {levels} levels, got spatial_shapes {spatial_shapes.shape}")

        value = self.value_proj(value)
        if value_padding_mask is not None:
            value = value.masked_fill(value_padding_mask[..., None], 0.0)
        value = value.view(bsz, num_values, heads, -1)

        offsets = self.sampling_offsets(query).view(bsz, num_queries, heads, levels, points, 2)
        attn = self.attention_weights(query).view(bsz, num_queries, heads, levels * points)
        attn = attn.softmax(-1).view(bsz, num_queries, heads, levels, points)

        ref = reference_points[:, :, None, :, None, :]  # (B, Q, 1, Lv, 1, 2|4)
        if reference_points.shape[-1] == 2:
            # (W, H) per level, so that an offset of 1 is one pixel of that level
            normalizer = spatial_shapes.flip(-1).to(offsets.dtype)
            locations = ref + offsets / normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            locations = ref[..., :2] + offsets / points * ref[..., 2:] * 0.5
        else:
            raise ValueError(
                f"reference_points must end in 2 or 4 coords, got {reference_points.shape}"
            )

        out = multi_scale_deformable_attention(value, spatial_shapes, locations, attn)
        out = self.dropout(self.output_proj(out))
        weights = DeformableAttentionWeights(locations, attn) if need_weights else None
        return out, weights


def deformable_weights_to_dense(
    weights: DeformableAttentionWeights, spatial_shapes: Tensor, half_pixel: bool = True
) -> Tensor:
    """Turn sparse deformable attention into a dense attention map over the flattened memory.

    Each sampling point's attention weight is split bilinearly over the 4 cells around its
    location, exactly as ``grid_sample(align_corners=False, padding_mode="zeros")`` reads them
    (pixel ``(i, j)`` has its centre at normalised ``((j + .5) / W, (i + .5) / H)``); the share
    falling on cells outside the level is dropped. The result therefore sums to at most 1 per
    (b, h, q), and to exactly 1 when every point lies at least half a pixel inside its level;
    ``dense @ value`` equals :func:`multi_scale_deformable_attention` (per head).
    ``half_pixel=False`` puts pixel ``(i, j)`` at ``(j / W, i / H)`` instead (half a pixel off
    what the attention reads; the public D3ETR port splats this way).

    Args:
        weights: Sampling locations (B, Q, H, Lv, P, 2) and attention weights (B, Q, H, Lv, P).
        spatial_shapes: Long tensor (Lv, 2) with ``(H_l, W_l)``.
        half_pixel: Pixel centres at half-integer normalised positions (see above).

    Returns:
        Tensor of shape (B, H, Q, S) with ``S = sum(H_l * W_l)``, differentiable w.r.t. the
        attention weights and the sampling locations.
    """
    locations = weights.sampling_locations
    attn = weights.attention_weights
    bsz, num_queries, heads = attn.shape[:3]
    sizes = _level_sizes(spatial_shapes)
    total = sum(h * w for h, w in sizes)
    all_index, all_value = [], []
    start = 0
    for lvl, (h, w) in enumerate(sizes):
        # pixel coordinates where integer values are pixel centres
        shift = 0.5 if half_pixel else 0.0
        x = locations[:, :, :, lvl, :, 0] * w - shift  # (B, Q, H, P)
        y = locations[:, :, :, lvl, :, 1] * h - shift
        x0, y0 = x.floor(), y.floor()
        fx, fy = x - x0, y - y0
        x0, y0 = x0.long(), y0.long()
        a = attn[:, :, :, lvl]
        for dx, wx in ((0, 1 - fx), (1, fx)):
            for dy, wy in ((0, 1 - fy), (1, fy)):
                xi, yi = x0 + dx, y0 + dy
                inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
                all_value.append(a * wx * wy * inside)
                all_index.append(start + yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1))
        start += h * w
    # (B, Q, H, 4*Lv*P) -> (B, H, Q, 4*Lv*P)
    index = torch.cat(all_index, dim=-1).transpose(1, 2)
    value = torch.cat(all_value, dim=-1).transpose(1, 2)
    dense = value.new_zeros(bsz, heads, num_queries, total)
    return dense.scatter_add(-1, index, value)
