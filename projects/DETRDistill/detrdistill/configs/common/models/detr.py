# DETR R50 (Carion et al.): 100 queries, 6+6 layers, softmax classification with no-object class.
from detectron2.config import LazyCall as L

from detrdistill.layers import PositionEmbeddingSine
from detrdistill.modeling import (
    DETR,
    InputProjection,
    build_resnet_backbone,
    resnet_output_shapes,
)
from detrdistill.modeling.constants import IMAGENET_RGB_MEAN, IMAGENET_RGB_STD
from detrdistill.modeling.criterion import SetCriterion
from detrdistill.modeling.matcher import HungarianMatcher
from detrdistill.modeling.transformers import DetrDecoder, DetrEncoder

model = L(DETR)(
    backbone=L(build_resnet_backbone)(
        depth=50, width=64, out_features=["res5"], norm="FrozenBN", freeze_at=1
    ),
    neck=L(InputProjection)(
        input_shapes=L(resnet_output_shapes)(
            depth="${...backbone.depth}", width="${...backbone.width}"
        ),
        in_features=["res5"],
        out_channels="${..hidden_dim}",
        num_extra_levels=0,
        norm="",
    ),
    position_embedding=L(PositionEmbeddingSine)(
        num_pos_feats=128, temperature=10000, normalize=True
    ),
    encoder=L(DetrEncoder)(
        dim="${..hidden_dim}", num_heads=8, ffn_dim=2048, num_layers=6, dropout=0.1
    ),
    decoder=L(DetrDecoder)(
        dim="${..hidden_dim}", num_heads=8, ffn_dim=2048, num_layers=6, dropout=0.1
    ),
    criterion=L(SetCriterion)(
        num_classes="${..num_classes}",
        # the criterion and its matcher take model.loss_class_type (modeling/class_type.py)
        matcher=L(HungarianMatcher)(cost_class=1.0, cost_bbox=5.0, cost_giou=2.0),
        weight_dict={"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0},
        eos_coef=0.1,
    ),
    num_classes=80,
    num_queries=100,
    hidden_dim=256,
    pixel_mean=IMAGENET_RGB_MEAN,
    pixel_std=IMAGENET_RGB_STD,
    loss_class_type="softmax",  # the one key of the class type: "softmax" or "focal"
    aux_loss=True,
    select_box_nums_for_evaluation=100,
    input_format="RGB",
)
