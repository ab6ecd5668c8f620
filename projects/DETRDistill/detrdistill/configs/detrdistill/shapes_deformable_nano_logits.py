# DETRDistill logits term alone on the compressing pair (shipped tiny teacher -> nano student).
#   python train_net.py --config-file detrdistill/shapes_deformable_nano_logits.py
from ..shapes.deformable_detr_nano import model as _student
from .shapes_deformable_tiny_logits import dataloader, lr_multiplier, model, optimizer, train

model.student = _student
train.output_dir = "./output/detrdistill/shapes_deformable_nano_logits"
