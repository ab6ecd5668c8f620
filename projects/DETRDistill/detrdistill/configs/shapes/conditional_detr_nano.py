# The small student of the embedded-data Conditional DETR pair: the tiny Conditional DETR at half
# its widths (ResNet-18 layout at quarter width from the shipped 16-wide shapes-pretrained
# backbone, a 64-wide transformer with 4 heads, one encoder layer); its teacher is
# shapes/conditional_detr_tiny_teacher.py. The README lists params, GFLOPs and CPU latency.
#   python train_net.py --config-file shapes/conditional_detr_nano.py
from ..common.models.tiny import nano_pretrained_backbone as _pretrained_backbone
from .conditional_detr_tiny import dataloader, lr_multiplier, model, optimizer, train

model.backbone.width = 16
model.hidden_dim = 64
model.position_embedding.num_pos_feats = 32
model.encoder.update(num_layers=1, num_heads=4, ffn_dim=256)
model.decoder.update(num_heads=4, ffn_dim=256)
train.init_checkpoint = _pretrained_backbone
train.output_dir = "./output/shapes/conditional_detr_nano"
