# DAB-DETR R50, COCO 2017, 12 epochs (GPU).
from ..common.coco_12ep import schedule_12ep as _schedule
from .dab_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

train.merge_with(_schedule.train)
lr_multiplier.merge_with(_schedule.lr_multiplier)
train.output_dir = "./output/coco/dab_detr_r50_12ep"
