# DETR R50, COCO 2017, 50 epochs at total batch 16 (GPU).
#   python train_net.py --config-file coco/detr_r50_50ep.py --num-gpus 8
from ..common.coco_gpu import dataloader, lr_multiplier, optimizer, train
from ..common.models.detr import model

optimizer.lr = 1e-4
train.output_dir = "./output/coco/detr_r50_50ep"
