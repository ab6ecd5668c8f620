"""Knowledge distillation for DETR-family detectors (DETRDistill, D3ETR)."""

from .adapters import QueryAdapter
from .groups import TEACHER_QUERIES, GroupContext, QueryGroupBuilder, TeacherQueryGroup
from .inputs import DistillationInputs
from .layer_mapping import map_decoder_layers
from .losses import (
    AdaptiveMatchingDistillation,
    AttentionDistillation,
    DistillationLoss,
    FixedMatchingDistillation,
    HungarianLogitsDistillation,
    PredictionDistillation,
    QueryContrastiveDistillation,
    QueryPriorAssignmentDistillation,
    TargetAwareFeatureDistillation,
)
from .matching import TeacherStudentMatcher, class_probabilities
from .meta_arch import DistillationDetector
from .teacher import load_teacher_weights

__all__ = [
    "AdaptiveMatchingDistillation",
    "AttentionDistillation",
    "DistillationDetector",
    "DistillationInputs",
    "DistillationLoss",
    "FixedMatchingDistillation",
    "GroupContext",
    "HungarianLogitsDistillation",
    "PredictionDistillation",
    "QueryAdapter",
    "QueryContrastiveDistillation",
    "QueryGroupBuilder",
    "QueryPriorAssignmentDistillation",
    "TEACHER_QUERIES",
    "TargetAwareFeatureDistillation",
    "TeacherQueryGroup",
    "TeacherStudentMatcher",
    "class_probabilities",
    "load_teacher_weights",
    "map_decoder_layers",
]
