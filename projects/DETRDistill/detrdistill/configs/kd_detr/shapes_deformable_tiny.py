# KD-DETR, specific + general distillation points (embedded shapes data, the shipped tiny
# teacher -> a tiny student of the same architecture).
#   python train_net.py --config-file kd_detr/shapes_deformable_tiny.py
# Counts: the teacher's 30 queries as specific points and 30 general points, the official
# code's 1:1 ratio (300 + 300 with 300 queries on COCO).
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("kd_detr"))
model.group_builders.kd_general_points.num_points = 30
train.output_dir = "./output/kd_detr/shapes_deformable_tiny"
