# Distillation loss modules with their default settings, by method. Experiment configs pick
# entries into model.losses and give each a weight in model.loss_weights. Interpolations
# ("${...student.hidden_dim}") resolve against the DistillationDetector config they end up in.
from detectron2.config import LazyCall as L

from detrdistill.distill import (
    AdaptiveMatchingDistillation,
    FixedMatchingDistillation,
    HungarianLogitsDistillation,
    PredictionDistillation,
    QueryContrastiveDistillation,
    QueryPriorAssignmentDistillation,
    TargetAwareFeatureDistillation,
    TeacherStudentMatcher,
)

# Teacher-student matching cost and prediction loss (class 1 / L1 5 / GIoU 2), shared by both
# methods: DETRDistill's logits distillation and D3ETR's adaptive and fixed matching.
matcher = L(TeacherStudentMatcher)(
    cost_class=1.0, cost_bbox=5.0, cost_giou=2.0, class_cost_reduction="mean"
)
prediction = L(PredictionDistillation)(class_weight=1.0, bbox_weight=5.0, giou_weight=2.0)

detrdistill_losses = dict(
    # (a) Hungarian-matching logits distillation; mode="joint" is the official code's behaviour
    logits=L(HungarianLogitsDistillation)(
        matcher=matcher, prediction=prediction, mode="split", positive_threshold=0.5
    ),
    # (b) target-aware feature distillation on the transformer inputs
    feature=L(TargetAwareFeatureDistillation)(
        student_channels="${...student.hidden_dim}",
        teacher_channels="${...teacher.hidden_dim}",
        num_levels="${...student.encoder.num_levels}",
        top_k=100,
        feature_source="input",
        teacher_layers="all",
        official_squared_mask=False,
    ),
    # (c) query-prior assignment distillation; assignment="student" is the official behaviour
    query_prior=L(QueryPriorAssignmentDistillation)(assignment="teacher"),
    # the official code's extra InfoNCE term (not in the paper); off unless a config adds it
    contrastive=L(QueryContrastiveDistillation)(
        student_dim="${...student.hidden_dim}", teacher_dim="${...teacher.hidden_dim}"
    ),
)
detrdistill_weights = dict(logits=1.0, feature=1.0, query_prior=1.0, contrastive=0.2)

d3etr_losses = dict(
    # Adaptive Matching: per-layer Hungarian teacher-student matching
    adaptive=L(AdaptiveMatchingDistillation)(
        matcher=matcher, prediction=prediction, self_attn_weight=1.0, cross_attn_weight=1.0
    ),
    # Fixed Matching: the teacher's queries as an auxiliary group in the student decoder
    fixed=L(FixedMatchingDistillation)(
        prediction=prediction, self_attn_weight=1.0, cross_attn_weight=1.0
    ),
)
d3etr_weights = dict(adaptive=1.0, fixed=1.0)
