# The small student of the embedded-data compression pairs: the tiny two-stage Deformable DETR at
# half its widths (ResNet-18 layout at quarter width, a 64-wide transformer with 4 heads, one
# encoder layer), about a third of the shipped teacher's (shapes/deformable_detr_tiny_teacher.py)
# GFLOPs; the README lists params, GFLOPs and CPU latency of both.
#   python train_net.py --config-file shapes/deformable_detr_nano.py
from .deformable_detr_tiny import dataloader, lr_multiplier, model, optimizer, train

model.backbone.width = 16
model.hidden_dim = 64
model.position_embedding.num_pos_feats = 32
model.encoder.update(num_layers=1, num_heads=4, ffn_dim=256)
model.decoder.update(num_heads=4, ffn_dim=256)
train.output_dir = "./output/shapes/deformable_detr_nano"
