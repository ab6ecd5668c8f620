# D3ETR MixMatcher (adaptive + fixed matching) on predictions only, without attention terms.
#   python train_net.py --config-file d3etr/shapes_deformable_tiny_no_attention.py
from .shapes_deformable_tiny import dataloader, lr_multiplier, model, optimizer, train

for name in model.losses:
    model.losses[name].attention.update(self_attn_weight=0.0, cross_attn_weight=0.0)
train.output_dir = "./output/d3etr/shapes_deformable_tiny_no_attention"
