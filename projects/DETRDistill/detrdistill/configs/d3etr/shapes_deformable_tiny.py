# D3ETR MixMatcher (adaptive + fixed matching) with attention terms (shapes, small -> tiny).
#   python train_net.py --config-file d3etr/shapes_deformable_tiny.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("d3etr"))
train.output_dir = "./output/d3etr/shapes_deformable_tiny"
