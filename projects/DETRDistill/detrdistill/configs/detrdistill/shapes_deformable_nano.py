# DETRDistill (a)+(b)+(c), compressing: the shipped tiny teacher (4.29 M params, 0.50 GFLOPs
# at 128x171) teaches the nano student (shapes/deformable_detr_nano.py: 1.03 M, 0.11 GFLOPs).
# Widths differ (128 vs 64): the feature and query adapters bridge them.
#   python train_net.py --config-file detrdistill/shapes_deformable_nano.py
from ..shapes.deformable_detr_nano import model as _student
from .shapes_deformable_tiny import dataloader, lr_multiplier, model, optimizer, train

model.student = _student
train.output_dir = "./output/detrdistill/shapes_deformable_nano"
