"""Projection of backbone features to the transformer's hidden size."""

from __future__ import annotations

import torch
from detectron2.layers import ShapeSpec
from torch import Tensor, nn

__all__ = ["InputProjection"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "GN":
        # 32 groups as usual; narrower widths (e.g. 48) take the largest divisor below 32
        groups = max(g for g in range(1, 33) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind in ("", None, "none"):
        return nn.Identity()
    raise ValueError(f"model.neck.norm={kind!r} is not supported; use 'GN' or ''")


class InputProjection(nn.Module):
    """Maps backbone levels to ``out_channels`` (1x1 conv + norm) and adds strided extra levels.

    DETR, Conditional and DAB-DETR use one level without norm (``input_proj``); Deformable DETR
    uses res3-res5 plus one extra 3x3/stride-2 level, all with GroupNorm (detrex's ChannelMapper).
    """

    def __init__(
        self,
        *,
        input_shapes: dict[str, ShapeSpec],
        in_features: list[str],
        out_channels: int,
        num_extra_levels: int = 0,
        norm: str = "GN",
    ):
        """
        Args:
            input_shapes: backbone ``output_shape()``.
            in_features: backbone features to project, lowest stride first.
            out_channels: transformer hidden size D.
            num_extra_levels: extra levels made by 3x3 stride-2 convs from the last input level.
            norm: "GN" or "" (no norm).
        """
        super().__init__()
        missing = [name for name in in_features if name not in input_shapes]
        if missing:
            raise ValueError(
                f"model.neck.in_features {missing} are not produced by the backbone "
                f"(it gives {sorted(input_shapes)}); set model.backbone.out_features to match"
            )
        self.in_features = list(in_features)
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(input_shapes[name].channels, out_channels, kernel_size=1),
                _norm(norm, out_channels),
            )
            for name in in_features
        )
        extra_in = input_shapes[in_features[-1]].channels
        self.extra_convs = nn.ModuleList()
        for _ in range(num_extra_levels):
            self.extra_convs.append(
                nn.Sequential(
                    nn.Conv2d(extra_in, out_channels, kernel_size=3, stride=2, padding=1),
                    _norm(norm, out_channels),
                )
            )
            extra_in = out_channels
        self.strides = [input_shapes[n].stride for n in in_features]
        self.strides += [self.strides[-1] * 2 ** (i + 1) for i in range(num_extra_levels)]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight, gain=1)
                nn.init.zeros_(module.bias)

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    def forward(self, features: dict[str, Tensor]) -> list[Tensor]:
        """
        Args:
            features: backbone outputs, name -> (B, C, H, W).

        Returns:
            list over levels of (B, D, Hl, Wl), lowest stride first.
        """
        outs = [conv(features[name]) for conv, name in zip(self.convs, self.in_features)]
        last = features[self.in_features[-1]]
        for conv in self.extra_convs:
            last = conv(last)
            outs.append(last)
        return outs


def level_masks(padding_mask: Tensor, levels: list[Tensor]) -> list[Tensor]:
    """Resize an image padding mask (B, H, W) bool to each level's (B, Hl, Wl)."""
    mask = padding_mask[None].float()
    return [
        torch.nn.functional.interpolate(mask, size=level.shape[-2:]).to(torch.bool)[0]
        for level in levels
    ]
