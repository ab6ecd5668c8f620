# D3ETR adaptive matching only (embedded shapes data, small -> tiny).
#   python train_net.py --config-file d3etr/shapes_deformable_tiny_adaptive.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("d3etr", ["adaptive"]))
train.output_dir = "./output/d3etr/shapes_deformable_tiny_adaptive"
