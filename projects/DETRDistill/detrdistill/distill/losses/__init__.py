"""Distillation losses: each ``forward(inputs: DistillationInputs) -> dict[str, Tensor]``."""

from .attention import (
    AttentionDistillation,
    attention_distance,
    cross_attention_distillation,
    self_attention_distillation,
)
from .base import DistillationLoss
from .contrastive import ContrastiveProjection, QueryContrastiveDistillation
from .feature import TargetAwareFeatureDistillation
from .kd_detr import KDDETRDistillation
from .logits import HungarianLogitsDistillation
from .mixmatcher import AdaptiveMatchingDistillation, FixedMatchingDistillation
from .prediction import PredictionDistillation
from .query_prior import QueryPriorAssignmentDistillation

__all__ = [
    "AdaptiveMatchingDistillation",
    "AttentionDistillation",
    "ContrastiveProjection",
    "DistillationLoss",
    "FixedMatchingDistillation",
    "HungarianLogitsDistillation",
    "KDDETRDistillation",
    "PredictionDistillation",
    "QueryContrastiveDistillation",
    "QueryPriorAssignmentDistillation",
    "TargetAwareFeatureDistillation",
    "attention_distance",
    "cross_attention_distillation",
    "self_attention_distillation",
]
