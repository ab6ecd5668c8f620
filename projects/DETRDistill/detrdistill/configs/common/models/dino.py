# DINO R50 4-scale (Zhang et al.): res3-res5 + one extra stride-64 level, 900 queries, mixed query
# selection, look-forward-twice box refinement, contrastive denoising (100 denoising queries per
# kind), focal loss, encoder (two-stage) losses.
# Position encoding as detrex's DINO (temperature 10000, offset -0.5); the official repository's
# is temperature 20, offset 0 (teachers/dino_r50_4scale_12ep.py sets it for its checkpoint).
# Denoising noise as the official repository (dn_box_noise_scale 0.4, dn_label_noise_ratio 0.5,
# i.e. each label replaced with probability 0.25); detrex uses box 1.0, label 0.2 (-> 0.1).
from detectron2.config import LazyCall as L

from detrdistill.modeling import DINO, DenoisingQueries
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
model.criterion.matcher.cost_class = 2.0
model.criterion.weight_dict = {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
model.denoising = L(DenoisingQueries)(
    num_classes="${..num_classes}",
    hidden_dim="${..hidden_dim}",
    num_groups=None,
    num_dn_queries=100,  # DINO's dn_number: G = 100 // (most boxes in an image of the batch)
    label_noise_ratio=0.25,
    box_noise_scale=0.4,
    contrastive=True,
)
