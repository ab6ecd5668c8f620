"""Knowledge distillation for DETR-family detectors (DETRDistill, D3ETR, KD-DETR)."""

from .adapters import QueryAdapter
from .groups import (
    GENERAL_POINTS,
    SPECIFIC_POINTS,
    TEACHER_QUERIES,
    GeneralPoints,
    GroupContext,
    QueryGroupBuilder,
    SpecificPoints,
    TeacherQueryGroup,
)
from .inputs import DistillationInputs
from .layer_mapping import map_decoder_layers
from .losses import (
    AdaptiveMatchingDistillation,
    AttentionDistillation,
    DistillationLoss,
    FixedMatchingDistillation,
    HungarianLogitsDistillation,
    KDDETRDistillation,
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
    "GENERAL_POINTS",
    "GeneralPoints",
    "GroupContext",
    "HungarianLogitsDistillation",
    "KDDETRDistillation",
    "PredictionDistillation",
    "QueryAdapter",
    "QueryContrastiveDistillation",
    "QueryGroupBuilder",
    "QueryPriorAssignmentDistillation",
    "SPECIFIC_POINTS",
    "SpecificPoints",
    "TEACHER_QUERIES",
    "TargetAwareFeatureDistillation",
    "TeacherQueryGroup",
    "TeacherStudentMatcher",
    "class_probabilities",
    "load_teacher_weights",
    "map_decoder_layers",
]
