# D3ETR MixMatcher without attention terms, compressing pair (shipped tiny teacher -> nano).
#   python train_net.py --config-file d3etr/shapes_deformable_nano_no_attention.py
from ..shapes.deformable_detr_nano import model as _student
from .shapes_deformable_tiny_no_attention import dataloader, lr_multiplier, model, optimizer, train

model.student = _student
train.output_dir = "./output/d3etr/shapes_deformable_nano_no_attention"
