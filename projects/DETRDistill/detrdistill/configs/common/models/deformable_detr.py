# Deformable DETR R50 (Zhu et al.): res3-res5 + one extra level, 300 queries, focal loss.
# Options: model.with_box_refine=True, model.as_two_stage=True.
from detectron2.config import LazyCall as L

from detrdistill.modeling import DeformableDETR
from detrdistill.modeling.transformers import DeformableDecoder, DeformableEncoder

from .detr import model

model._target_ = DeformableDETR
model.backbone.out_features = ["res3", "res4", "res5"]
model.neck.in_features = ["res3", "res4", "res5"]
model.neck.num_extra_levels = 1
model.neck.norm = "GN"
model.position_embedding.offset = -0.5
model.encoder = L(DeformableEncoder)(
    dim="${..hidden_dim}",
    num_heads=8,
    ffn_dim=1024,
    num_layers=6,
    dropout=0.1,
    num_levels=4,
    num_points=4,
)
model.decoder = L(DeformableDecoder)(
    dim="${..hidden_dim}",
    num_heads=8,
    ffn_dim=1024,
    num_layers=6,
    dropout=0.1,
    num_levels="${..encoder.num_levels}",
    num_points=4,
)
model.num_queries = 300
model.with_box_refine = False
model.as_two_stage = False
model.loss_class_type = "focal"
model.criterion.matcher.cost_class = 2.0
model.criterion.weight_dict = {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}
