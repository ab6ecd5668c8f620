"""Sine position encodings: over a padded feature map, and of normalised point / box coordinates."""

import math

import torch
from torch import Tensor, nn

__all__ = ["PositionEmbeddingSine", "coordinate_sine_embedding"]


def _sine_features(values: Tensor, num_pos_feats: int, temperature: float) -> Tensor:
    """Embed scalars into ``num_pos_feats`` interleaved sin/cos features.

    Feature ``2i`` is ``sin(v / T^(2i/F))`` and feature ``2i+1`` is ``cos(v / T^(2i/F))``.

    Args:
        values: Tensor of any shape (...,), already multiplied by the scale.
        num_pos_feats: F, must be even.
        temperature: T.

    Returns:
        Tensor of shape (..., F).
    """
    if num_pos_feats % 2 != 0:
        raise ValueError(f"num_pos_feats must be even, got {num_pos_feats}")
    # at least fp32: T^(2i/F) overflows fp16
    dtype = torch.promote_types(values.dtype, torch.float32)
    dim_t = torch.arange(num_pos_feats // 2, dtype=dtype, device=values.device)
    dim_t = temperature ** (2 * dim_t / num_pos_feats)  # one frequency per sin/cos pair
    angles = values.to(dtype)[..., None] / dim_t  # (..., F/2)
    # stack on a new last dim and flatten -> sin, cos, sin, cos, ...
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """2-D sine position encoding of a padded feature map (DETR / Deformable DETR).

    The coordinate of a pixel is the cumulative count of valid (non-padding) pixels along its
    column (y) and row (x). With ``normalize`` it is ``(count + offset) / (total + eps) * scale``
    so that coordinates of every image span ``(0, scale]`` regardless of padding. DETR uses
    ``offset=0``; Deformable DETR uses ``offset=-0.5`` (pixel centres).

    Args:
        num_pos_feats: Features per axis; the output has ``2 * num_pos_feats`` channels.
        temperature: Frequency base of the sine embedding.
        normalize: Normalise the cumulative coordinates by the valid extent.
        scale: Range of the normalised coordinates (2*pi by default).
        offset: Added to the cumulative coordinates before normalisation.
        eps: Added to the denominator of the normalisation.
    """

    def __init__(
        self,
        num_pos_feats: int = 128,
        temperature: float = 10000,
        normalize: bool = True,
        scale: float = 2 * math.pi,
        offset: float = 0.0,
        *,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.offset = offset
        self.eps = eps

    def forward(self, mask: Tensor) -> Tensor:
        """
        Args:
            mask: Bool tensor of shape (B, H, W), True where the pixel is padding.

        Returns:
            Float tensor of shape (B, 2 * num_pos_feats, H, W): channels ``[0, F)`` encode y,
            channels ``[F, 2F)`` encode x.
        """
        valid = (~mask).to(torch.float32)
        y = valid.cumsum(1)
        x = valid.cumsum(2)
        if self.normalize:
            y = (y + self.offset) / (y[:, -1:, :] + self.eps) * self.scale
            x = (x + self.offset) / (x[:, :, -1:] + self.eps) * self.scale
        pos_y = _sine_features(y, self.num_pos_feats, self.temperature)  # (B, H, W, F)
        pos_x = _sine_features(x, self.num_pos_feats, self.temperature)
        return torch.cat((pos_y, pos_x), dim=-1).permute(0, 3, 1, 2).contiguous()

    def extra_repr(self) -> str:
        return (
            f"num_pos_feats={self.num_pos_feats}, temperature={self.temperature}, "
            f"normalize={self.normalize}, scale={self.scale}, offset={self.offset}"
        )


def coordinate_sine_embedding(
    coords: Tensor,
    num_pos_feats: int = 128,
    temperature: float = 10000,
    *,
    scale: float = 2 * math.pi,
) -> Tensor:
    """Sine embedding of normalised points or boxes (Conditional DETR / DAB-DETR convention).

    Each coordinate ``c`` (in [0, 1]) becomes ``num_pos_feats`` interleaved sin/cos features of
    ``c * scale``. The per-coordinate embeddings are concatenated in the order
    ``(y, x)`` for points ``(x, y)``, and ``(y, x, w, h)`` for boxes ``(cx, cy, w, h)``.

    Args:
        coords: Tensor of shape (..., 2) with ``(x, y)`` or (..., 4) with ``(cx, cy, w, h)``.
        num_pos_feats: Features per coordinate.
        temperature: Frequency base.
        scale: Multiplier applied to the coordinates before embedding.

    Returns:
        Float tensor of shape (..., num_pos_feats * coords.shape[-1]).
    """
    num_coords = coords.shape[-1]
    if num_coords not in (2, 4):
        raise ValueError(f"coords must have 2 or 4 values in the last dim, got {num_coords}")
    order = [1, 0] if num_coords == 2 else [1, 0, 2, 3]
    embeds = [_sine_features(coords[..., i] * scale, num_pos_feats, temperature) for i in order]
    return torch.cat(embeds, dim=-1)
