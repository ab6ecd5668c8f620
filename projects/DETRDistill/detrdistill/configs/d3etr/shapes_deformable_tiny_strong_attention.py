# D3ETR MixMatcher with the attention terms measured as before the KL default: mean squared
# error between attention probabilities, scaled up to the size of the prediction terms (the MSE
# is tiny: self ~1e-2, cross ~1e-3 at the start on this data; the public port uses 1e4 / 1e3).
#   python train_net.py --config-file d3etr/shapes_deformable_tiny_strong_attention.py
from .shapes_deformable_tiny import dataloader, lr_multiplier, model, optimizer, train

for name in model.losses:
    model.losses[name].attention.update(
        distance="mse", self_attn_weight=100.0, cross_attn_weight=1000.0
    )
train.output_dir = "./output/d3etr/shapes_deformable_tiny_strong_attention"
