# KD-DETR, compressing: the shipped tiny teacher (4.29 M params, 0.50 GFLOPs at 128x171) teaches
# the nano student (shapes/deformable_detr_nano.py: 1.03 M, 0.11 GFLOPs). Both are two-stage:
# each turns a point's box into its own queries through its own proposal head, so the widths
# (128 vs 64) need no adapter.
#   python train_net.py --config-file kd_detr/shapes_deformable_nano.py
from ..shapes.deformable_detr_nano import model as _student
from .shapes_deformable_tiny import dataloader, lr_multiplier, model, optimizer, train

model.student = _student
train.output_dir = "./output/kd_detr/shapes_deformable_nano"
