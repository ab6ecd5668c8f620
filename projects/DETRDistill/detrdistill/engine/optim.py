"""Optimizer parameter groups for DETR-family detectors.

DETR trains the backbone at a tenth of the base learning rate; Deformable DETR also slows down
the linear projections that predict sampling offsets and reference points. Both are expressed as
a per-parameter learning-rate factor on top of detectron2's ``get_default_optimizer_params``.
The factor function is a ``functools.partial`` of :func:`detr_lr_factor`, never a lambda, so
configs that use it can be saved and reloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch
from detectron2.solver import get_default_optimizer_params

__all__ = ["get_detr_param_groups", "detr_lr_factor", "name_matches_keywords"]


def name_matches_keywords(name: str, keywords: Iterable[str]) -> bool:
    """Whether a dotted parameter name contains one of the keywords as whole components.

    ``"backbone"`` matches ``"backbone.res2.0.conv1.weight"`` and
    ``"student.backbone.stem.conv1.weight"`` but not ``"backbone_proj.weight"``; a keyword may
    span components (``"student.backbone"``).

    Args:
        name: a full parameter name (``module.sub.param``).
        keywords: keywords to look for.

    Returns:
        bool: True if any keyword occurs dot-bounded in ``name``.
    """
    padded = f".{name}."
    return any(f".{keyword}." in padded for keyword in keywords)


def detr_lr_factor(
    name: str,
    *,
    lr_backbone_multiplier: float = 0.1,
    lr_linear_proj_multiplier: float = 0.1,
    backbone_keywords: Iterable[str] = ("backbone",),
    linear_proj_keywords: Iterable[str] = ("sampling_offsets", "reference_points"),
) -> float:
    """Learning-rate factor of one parameter (backbone keywords take precedence).

    Args:
        name: the full parameter name.
        lr_backbone_multiplier: factor for names matching ``backbone_keywords``.
        lr_linear_proj_multiplier: factor for names matching ``linear_proj_keywords``.
        backbone_keywords, linear_proj_keywords: see :func:`name_matches_keywords`.

    Returns:
        float: the factor applied to the base learning rate.
    """
    if name_matches_keywords(name, backbone_keywords):
        return float(lr_backbone_multiplier)
    if name_matches_keywords(name, linear_proj_keywords):
        return float(lr_linear_proj_multiplier)
    return 1.0


def get_detr_param_groups(
    model: torch.nn.Module,
    base_lr: float,
    weight_decay: float | None = None,
    lr_backbone_multiplier: float = 0.1,
    lr_linear_proj_multiplier: float = 0.1,
    backbone_keywords: Iterable[str] = ("backbone",),
    linear_proj_keywords: Iterable[str] = ("sampling_offsets", "reference_points"),
    weight_decay_norm: float | None = 0.0,
) -> list[dict[str, Any]]:
    """Parameter groups with DETR's backbone / linear-projection learning rates.

    Parameters with ``requires_grad=False`` (a frozen teacher, frozen backbone stages) are left
    out; shared parameters appear once; groups with equal hyper-parameters are merged.

    Args:
        model: the model (not yet wrapped in DDP, so names have no ``module.`` prefix).
        base_lr: the optimizer's learning rate.
        weight_decay: weight decay of ordinary parameters; ``None`` leaves the optimizer's.
        lr_backbone_multiplier: learning-rate factor for backbone parameters.
        lr_linear_proj_multiplier: learning-rate factor for deformable-attention sampling
            offsets and reference-point projections.
        backbone_keywords, linear_proj_keywords: name components selecting those parameters.
        weight_decay_norm: weight decay of normalization layers' parameters (``None``: as
            ordinary parameters).

    Returns:
        list[dict]: ``params`` argument for a ``torch.optim`` optimizer.
    """
    lr_factor_func = functools.partial(
        detr_lr_factor,
        lr_backbone_multiplier=lr_backbone_multiplier,
        lr_linear_proj_multiplier=lr_linear_proj_multiplier,
        backbone_keywords=tuple(backbone_keywords),
        linear_proj_keywords=tuple(linear_proj_keywords),
    )
    return get_default_optimizer_params(
        model,
        base_lr=base_lr,
        weight_decay=weight_decay,
        weight_decay_norm=weight_decay_norm,
        lr_factor_func=lr_factor_func,
    )
