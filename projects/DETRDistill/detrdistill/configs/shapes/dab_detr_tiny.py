# DAB-DETR, tiny, on the embedded shapes dataset, CPU (single-scale res4, stride 16).
# Starts from the shipped shapes-pretrained backbone at 0.1x the learning rate (COCO's recipe
# for ImageNet weights).
#   python train_net.py --config-file shapes/dab_detr_tiny.py
from ..common.models.dab_detr import model
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
# AP50 39.4 after 1,500 iterations, 67.4 after 3,000 (README "Results on the embedded data").
train.max_iter = 3000
train.output_dir = "./output/shapes/dab_detr_tiny"
train.init_checkpoint = _pretrained_backbone
optimizer.params.lr_backbone_multiplier = 0.1
