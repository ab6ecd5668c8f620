# DETR, tiny, on the embedded shapes dataset, CPU (single-scale res4, stride 16).
# Starts from the shipped shapes-pretrained backbone at 0.1x the learning rate (COCO's recipe
# for ImageNet weights).
#   python train_net.py --config-file shapes/detr_tiny.py
from ..common.models.detr import model
from ..common.models.tiny import backbone as _backbone
from ..common.models.tiny import pretrained_backbone as _pretrained_backbone
from ..common.models.tiny import size as _size
from ..common.models.tiny import transformer as _transformer
from ..common.shapes_cpu import dataloader, lr_multiplier, optimizer, train

model.backbone = _backbone
model.backbone.out_features = ["res4"]
model.neck.in_features = ["res4"]
model.update(_size)
model.position_embedding.num_pos_feats = 64
model.encoder.update(_transformer, num_layers=2)
model.decoder.update(_transformer, num_layers=3)
# Plain DETR has no spatial prior: it plateaus for about 1,500 iterations before its queries
# learn where to look, then climbs (README "Results on the embedded data": AP50 4.3 at 1,500,
# 23.8 at 3,000, 52.9 at 5,000, 11.7 min on 2 idle cores); the lr decays at 80% of max_iter.
train.max_iter = 5000
train.output_dir = "./output/shapes/detr_tiny"
train.init_checkpoint = _pretrained_backbone
optimizer.params.lr_backbone_multiplier = 0.1
