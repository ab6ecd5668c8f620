# DETRDistill, all three components, embedded shapes data: the shipped tiny Deformable DETR
# teacher (configs/common/distill_shapes.py) -> the tiny DINO (shapes/dino_tiny.py), a
# heterogeneous pair: the teacher's queries enter the DINO decoder as anchors + content (DINO
# derives positional queries from anchors).
#   python train_net.py --config-file detrdistill/shapes_dino_tiny.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train
from ..shapes.dino_tiny import model as _student

model.student = _student
model.update(_method("detrdistill"))
train.output_dir = "./output/detrdistill/shapes_dino_tiny"
