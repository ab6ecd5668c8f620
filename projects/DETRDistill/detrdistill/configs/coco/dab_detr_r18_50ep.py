# DAB-DETR R18, COCO 2017, 50 epochs (GPU): KD-DETR's small student (R50 teacher -> R18).
# No detectron2-format R-18 ImageNet file is published: convert torchvision's resnet18 with
# detectron2's tools/convert-torchvision-to-d2.py and pass train.init_checkpoint=<file>.pkl.
from .dab_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

model.backbone.depth = 18
train.init_checkpoint = ""
train.output_dir = "./output/coco/dab_detr_r18_50ep"
