# DETRDistill (a)+(b)+(c), COCO 2017, DAB-DETR R101 -> R50, 12 epochs (GPU).
from ..common.coco_12ep import schedule_12ep as _schedule
from .coco_dab_detr_r101_to_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

train.merge_with(_schedule.train)
lr_multiplier.merge_with(_schedule.lr_multiplier)
train.output_dir = "./output/detrdistill/coco_dab_detr_r101_to_r50_12ep"
