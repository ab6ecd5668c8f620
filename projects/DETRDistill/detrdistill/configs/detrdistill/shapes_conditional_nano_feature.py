# DETRDistill feature term alone on the embedded-data Conditional DETR pair (shipped tiny
# Conditional DETR teacher -> nano student).
#   python train_net.py --config-file detrdistill/shapes_conditional_nano_feature.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes_conditional import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("detrdistill", ["feature"]))
model.losses.feature.num_levels = 1  # single-scale (res4) transformer input
train.output_dir = "./output/detrdistill/shapes_conditional_nano_feature"
