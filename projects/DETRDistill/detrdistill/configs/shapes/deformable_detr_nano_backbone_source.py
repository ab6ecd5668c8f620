# The source of the shipped 16-wide shapes backbone (weights/shapes_resnet18_w16_backbone.pth):
# the nano Deformable DETR trained from scratch for 4,000 iterations, like the shipped teacher.
# The dense-attention detectors (DETR, Conditional DETR, DAB-DETR) start from such a pretrained
# backbone on the embedded data, as they start from ImageNet weights on COCO (see the README).
#   python train_net.py --config-file shapes/deformable_detr_nano_backbone_source.py
from .deformable_detr_nano import dataloader, lr_multiplier, model, optimizer, train

train.max_iter = 4000
train.eval_period = 2000
train.checkpointer.period = 1000
train.output_dir = "./output/shapes/deformable_detr_nano_backbone_source"
