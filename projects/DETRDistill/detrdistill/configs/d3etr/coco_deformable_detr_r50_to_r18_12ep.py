# D3ETR MixMatcher with attention terms, COCO 2017, Deformable DETR R50 -> R18, 12 epochs (GPU).
from ..common.coco_12ep import to_12_epochs as _to_12_epochs
from .coco_deformable_detr_r50_to_r18_50ep import dataloader, lr_multiplier, model, optimizer, train

_to_12_epochs(train, lr_multiplier)
train.output_dir = "./output/d3etr/coco_deformable_detr_r50_to_r18_12ep"
