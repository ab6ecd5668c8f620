# D3ETR adaptive + fixed matching with attention terms on the embedded-data Conditional DETR pair
# (shipped tiny Conditional DETR teacher -> nano student).
#   python train_net.py --config-file d3etr/shapes_conditional_nano.py
from ..common.distill_losses import d3etr_losses as _losses
from ..common.distill_losses import d3etr_weights as _weights
from ..common.distill_shapes_conditional import dataloader, lr_multiplier, model, optimizer, train

model.losses = {name: _losses[name] for name in ("adaptive", "fixed")}
model.loss_weights = {name: _weights[name] for name in model.losses}
train.output_dir = "./output/d3etr/shapes_conditional_nano"
