# DETRDistill (b) target-aware feature distillation alone (embedded shapes data, small -> tiny).
#   python train_net.py --config-file detrdistill/shapes_deformable_tiny_feature.py
from ..common.distill_losses import detrdistill_losses as _losses
from ..common.distill_losses import detrdistill_weights as _weights
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train

model.losses = {name: _losses[name] for name in ("feature",)}
model.loss_weights = {name: _weights[name] for name in model.losses}
train.output_dir = "./output/detrdistill/shapes_deformable_tiny_feature"
