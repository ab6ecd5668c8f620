"""Building blocks shared by the DETR variants: box ops, position encodings, attention."""

from .attention import (
    ConditionalCrossAttention,
    ConditionalSelfAttention,
    MultiheadAttention,
    scaled_dot_product_attention_with_weights,
)
from .box_ops import (
    box_cxcywh_to_xyxy,
    box_iou,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
    inverse_sigmoid,
)
from .mlp import MLP
from .ms_deform_attn import (
    DeformableAttentionWeights,
    MultiScaleDeformableAttention,
    deformable_weights_to_dense,
    multi_scale_deformable_attention,
)
from .position_encoding import PositionEmbeddingSine, coordinate_sine_embedding

__all__ = [
    "ConditionalCrossAttention",
    "ConditionalSelfAttention",
    "DeformableAttentionWeights",
    "MLP",
    "MultiScaleDeformableAttention",
    "MultiheadAttention",
    "PositionEmbeddingSine",
    "box_cxcywh_to_xyxy",
    "box_iou",
    "box_xyxy_to_cxcywh",
    "coordinate_sine_embedding",
    "deformable_weights_to_dense",
    "generalized_box_iou",
    "inverse_sigmoid",
    "multi_scale_deformable_attention",
    "scaled_dot_product_attention_with_weights",
]
