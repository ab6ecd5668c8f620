# DETRDistill (a)+(b)+(c), COCO 2017, Conditional DETR R101 -> R50, 12 epochs (GPU).
from ..common.coco_12ep import to_12_epochs as _to_12_epochs
from .coco_conditional_detr_r101_to_r50_50ep import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

_to_12_epochs(train, lr_multiplier)
train.output_dir = "./output/detrdistill/coco_conditional_detr_r101_to_r50_12ep"
