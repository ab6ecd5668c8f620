# D3ETR MixMatcher without attention terms on the embedded-data Conditional DETR pair (shipped
# tiny Conditional DETR teacher -> nano student).
#   python train_net.py --config-file d3etr/shapes_conditional_nano_no_attention.py
from .shapes_conditional_nano import dataloader, lr_multiplier, model, optimizer, train

for name in model.losses:
    model.losses[name].attention.update(self_attn_weight=0.0, cross_attn_weight=0.0)
train.output_dir = "./output/d3etr/shapes_conditional_nano_no_attention"
