"""Optimizers. ``train_net.py`` sets ``optimizer.params.model`` to the built model."""

import torch
from detectron2.config import LazyCall as L

from detrdistill.engine.optim import get_detr_param_groups

# DETR family: AdamW, lr 1e-4, weight decay 1e-4; backbone and deformable-attention
# sampling-offset / reference-point projections at 0.1x the learning rate; no weight decay on
# normalization layers. Frozen parameters (requires_grad=False) are left out.
AdamW = L(torch.optim.AdamW)(
    params=L(get_detr_param_groups)(
        base_lr="${..lr}",
        weight_decay="${..weight_decay}",
        lr_backbone_multiplier=0.1,
        lr_linear_proj_multiplier=0.1,
        backbone_keywords=("backbone",),
        linear_proj_keywords=("sampling_offsets", "reference_points"),
        weight_decay_norm=0.0,
    ),
    lr=1e-4,
    betas=(0.9, 0.999),
    weight_decay=1e-4,
)
