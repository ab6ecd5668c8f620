# DAB-DETR R101, COCO 2017, 50 epochs (GPU); the R50 config with a deeper backbone.
from .dab_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

model.backbone.depth = 101
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-101.pkl"
train.output_dir = "./output/coco/dab_detr_r101_50ep"
