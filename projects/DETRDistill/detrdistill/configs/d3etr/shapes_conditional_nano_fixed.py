# D3ETR fixed matching alone on the embedded-data Conditional DETR pair (shipped tiny
# Conditional DETR teacher -> nano student).
#   python train_net.py --config-file d3etr/shapes_conditional_nano_fixed.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes_conditional import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("d3etr", ["fixed"]))
train.output_dir = "./output/d3etr/shapes_conditional_nano_fixed"
