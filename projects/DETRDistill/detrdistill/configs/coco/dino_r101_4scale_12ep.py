# DINO R101 4-scale, COCO 2017, 12 epochs (GPU); the R50 config with a deeper backbone.
from .dino_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

model.backbone.depth = 101
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-101.pkl"
train.output_dir = "./output/coco/dino_r101_4scale_12ep"
