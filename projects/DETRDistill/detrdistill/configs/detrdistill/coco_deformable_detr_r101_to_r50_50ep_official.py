# DETRDistill as the official code computes it (BIVLab-USTC/DETRDistill), COCO 2017, Deformable
# DETR R101 -> R50, 50 epochs (GPU): joint matching, the official feature mask, the teacher-query
# group matched by the student, and the InfoNCE term (weight 0.2). The defaults follow the paper
# instead (detrdistill/coco_deformable_detr_r101_to_r50_50ep.py);
# docs/faithfulness.md compares them.
#   python train_net.py --num-gpus 8 --config-file \
#       detrdistill/coco_deformable_detr_r101_to_r50_50ep_official.py
from ..common.distill_losses import detrdistill_official_losses as _losses
from ..common.distill_losses import detrdistill_official_weights as _weights
from .coco_deformable_detr_r101_to_r50_50ep import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

model.losses = dict(_losses)
model.loss_weights = dict(_weights)
model.teacher_query_reference = "student_head"
train.output_dir = "./output/detrdistill/coco_deformable_detr_r101_to_r50_50ep_official"
