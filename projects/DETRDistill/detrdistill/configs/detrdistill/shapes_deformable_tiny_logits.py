# DETRDistill (a) Hungarian-matching logits distillation alone (shapes, small -> tiny).
#   python train_net.py --config-file detrdistill/shapes_deformable_tiny_logits.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("detrdistill", ["logits"]))
train.output_dir = "./output/detrdistill/shapes_deformable_tiny_logits"
