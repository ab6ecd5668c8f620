# Deformable DETR R18, COCO 2017, 50 epochs (GPU): the DETRDistill paper's small student.
# No detectron2-format R-18 ImageNet file is published: convert torchvision's resnet18 with
# detectron2's tools/convert-torchvision-to-d2.py and pass train.init_checkpoint=<file>.pkl.
from .deformable_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

model.backbone.depth = 18
train.init_checkpoint = ""
train.output_dir = "./output/coco/deformable_detr_r18_50ep"
