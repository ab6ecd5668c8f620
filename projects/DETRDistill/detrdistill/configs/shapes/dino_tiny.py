# DINO, tiny, on the embedded shapes dataset, CPU: the sizes of shapes/deformable_detr_tiny.py
# (3 levels res3-res5, 30 queries, 128 wide, 2 encoder / 3 decoder layers).
#   python train_net.py --config-file shapes/dino_tiny.py
from ..common.models.dino import model
from ..common.models.tiny import backbone as _backbone
from ..common.models.tiny import size as _size
from ..common.models.tiny import transformer as _transformer
from ..common.shapes_cpu import dataloader, lr_multiplier, optimizer, train

model.backbone = _backbone
model.update(_size, select_box_nums_for_evaluation=100)
model.neck.in_features = ["res3", "res4", "res5"]
model.neck.num_extra_levels = 0
model.position_embedding.num_pos_feats = 64
model.encoder.update(_transformer, num_layers=2, num_levels=3)
model.decoder.update(_transformer, num_layers=3)
# denoising at the tiny model's scale: 30 queries per kind, G = 30 // (most boxes in an image):
# 5 groups for the shapes' up to 6 boxes (DN-DETR's 5 groups)
model.denoising.num_dn_queries = 30
train.output_dir = "./output/shapes/dino_tiny"
