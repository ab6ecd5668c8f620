# DINO R50 4-scale (Zhang et al.): res3-res5 + one extra stride-64 level, 900 queries, mixed query
# selection, look-forward-twice box refinement, focal loss, encoder (two-stage) losses.
# Position encoding as detrex's DINO (temperature 10000, offset -0.5); the official repository's
# is temperature 20, offset 0 (teachers/dino_r50_4scale_12ep.py sets it for its checkpoint).
from detectron2.config import LazyCall as L

from detrdistill.modeling import DINO
from detrdistill.modeling.transformers import DeformableEncoder, DinoDecoder

from .detr import model

model._target_ = DINO
model.backbone.out_features = ["res3", "res4", "res5"]
model.neck.in_features = ["res3", "res4", "res5"]
model.neck.num_extra_levels = 1
model.neck.norm = "GN"
model.position_embedding.offset = -0.5
model.encoder = L(DeformableEncoder)(
    dim="${..hidden_dim}",
    num_heads=8,
    ffn_dim=2048,
    num_layers=6,
    dropout=0.0,
    num_levels=4,
    num_points=4,
)
model.decoder = L(DinoDecoder)(
    dim="${..hidden_dim}",
    num_heads=8,
    ffn_dim=2048,
    num_layers=6,
    dropout=0.0,
    num_levels="${..encoder.num_levels}",
    num_points=4,
    look_forward_twice=True,
)
model.num_queries = 900
model.share_heads = True
model.select_box_nums_for_evaluation = 300
model.loss_class_type = "focal"
model.criterion.loss_class_type = "focal"
model.criterion.matcher.class_cost_type = "focal"
model.criterion.matcher.cost_class = 2.0
model.criterion.weight_dict = {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
