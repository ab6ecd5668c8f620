# DETRDistill (a)+(b)+(c) on the embedded-data Conditional DETR pair (shipped tiny Conditional
# DETR teacher -> nano student).
#   python train_net.py --config-file detrdistill/shapes_conditional_nano.py
from ..common.distill_losses import detrdistill_losses as _losses
from ..common.distill_losses import detrdistill_weights as _weights
from ..common.distill_shapes_conditional import dataloader, lr_multiplier, model, optimizer, train

model.losses = {name: _losses[name] for name in ("logits", "feature", "query_prior")}
model.loss_weights = {name: _weights[name] for name in model.losses}
model.losses.feature.num_levels = 1  # single-scale (res4) transformer input
train.output_dir = "./output/detrdistill/shapes_conditional_nano"
