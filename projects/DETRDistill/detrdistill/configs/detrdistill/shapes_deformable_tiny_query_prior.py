# DETRDistill (c) query-prior assignment distillation alone (embedded shapes data, small -> tiny).
#   python train_net.py --config-file detrdistill/shapes_deformable_tiny_query_prior.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("detrdistill", ["query_prior"]))
train.output_dir = "./output/detrdistill/shapes_deformable_tiny_query_prior"
