# Conditional DETR R101, COCO 2017, 12 epochs (GPU).
from ..common.coco_12ep import schedule_12ep as _schedule
from .conditional_detr_r101_50ep import dataloader, lr_multiplier, model, optimizer, train

train.merge_with(_schedule.train)
lr_multiplier.merge_with(_schedule.lr_multiplier)
train.output_dir = "./output/coco/conditional_detr_r101_12ep"
