# D3ETR fixed matching alone on the compressing pair (shipped tiny teacher -> nano student).
#   python train_net.py --config-file d3etr/shapes_deformable_nano_fixed.py
from ..shapes.deformable_detr_nano import model as _student
from .shapes_deformable_tiny_fixed import dataloader, lr_multiplier, model, optimizer, train

model.student = _student
train.output_dir = "./output/d3etr/shapes_deformable_nano_fixed"
