"""DETR-family meta-architectures, registered in detectron2's ``META_ARCH_REGISTRY``."""

from .base import DETRBase, query_group_mask
from .conditional_detr import ConditionalDETR
from .dab_detr import DABDETR
from .deformable_detr import DeformableDETR
from .detr import DETR
from .dino import DINO

__all__ = [
    "DETRBase",
    "DETR",
    "ConditionalDETR",
    "DABDETR",
    "DeformableDETR",
    "DINO",
    "query_group_mask",
]
