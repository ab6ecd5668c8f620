# Conditional DETR, tiny, on the embedded shapes dataset, CPU (single-scale res4, stride 16).
#   python train_net.py --config-file shapes/conditional_detr_tiny.py
from ..common.models.conditional_detr import model
from ..common.models.tiny import backbone, size, transformer
from ..common.shapes_cpu import dataloader, lr_multiplier, optimizer, train

model.backbone = backbone
model.backbone.out_features = ["res4"]
model.neck.in_features = ["res4"]
model.update(size)
model.position_embedding.num_pos_feats = 64
model.encoder.update(transformer, num_layers=2)
model.decoder.update(transformer, num_layers=3)
train.output_dir = "./output/shapes/conditional_detr_tiny"
