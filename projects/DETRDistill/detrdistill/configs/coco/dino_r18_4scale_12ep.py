# DINO R18 4-scale, COCO 2017, 12 epochs (GPU): the student of the DINO R50 -> R18 pairs.
# No detectron2-format R-18 ImageNet file is published: convert torchvision's resnet18 with
# detectron2's tools/convert-torchvision-to-d2.py and pass train.init_checkpoint=<file>.pkl.
from .dino_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

model.backbone.depth = 18
train.init_checkpoint = ""
train.output_dir = "./output/coco/dino_r18_4scale_12ep"
