"""Distillation losses: each ``forward(inputs: DistillationInputs) -> dict[str, Tensor]``."""

from .attention import (
    AttentionDistillation,
    cross_attention_distillation,
    self_attention_distillation,
)
from .contrastive import QueryContrastiveDistillation
from .feature import TargetAwareFeatureDistillation
from .logits import HungarianLogitsDistillation
from .mixmatcher import AdaptiveMatchingDistillation, FixedMatchingDistillation
from .prediction import PredictionDistillation
from .query_prior import QueryPriorAssignmentDistillation

__all__ = [
    "AdaptiveMatchingDistillation",
    "AttentionDistillation",
    "FixedMatchingDistillation",
    "HungarianLogitsDistillation",
    "PredictionDistillation",
    "QueryContrastiveDistillation",
    "QueryPriorAssignmentDistillation",
    "TargetAwareFeatureDistillation",
    "cross_attention_distillation",
    "self_attention_distillation",
]
