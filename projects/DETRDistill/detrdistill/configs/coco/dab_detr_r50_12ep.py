# DAB-DETR R50, COCO 2017, 12 epochs (GPU).
from ..common.coco_12ep import to_12_epochs as _to_12_epochs
from .dab_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

_to_12_epochs(train, lr_multiplier)
train.output_dir = "./output/coco/dab_detr_r50_12ep"
