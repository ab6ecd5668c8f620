# DETRDistill query-prior assignment term alone on the embedded-data Conditional DETR pair
# (shipped tiny Conditional DETR teacher -> nano student).
#   python train_net.py --config-file detrdistill/shapes_conditional_nano_query_prior.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes_conditional import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("detrdistill", ["query_prior"]))
train.output_dir = "./output/detrdistill/shapes_conditional_nano_query_prior"
