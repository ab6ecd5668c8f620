# D3ETR MixMatcher with attention terms, embedded shapes data: the shipped tiny Deformable DETR
# teacher (configs/common/distill_shapes.py) -> the tiny DINO (shapes/dino_tiny.py).
#   python train_net.py --config-file d3etr/shapes_dino_tiny.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train
from ..shapes.dino_tiny import model as _student

model.student = _student
model.update(_method("d3etr"))
train.output_dir = "./output/d3etr/shapes_dino_tiny"
