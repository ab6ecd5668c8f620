# Deformable DETR R50, COCO 2017, 50 epochs at total batch 16 (GPU).
#   python train_net.py --config-file coco/deformable_detr_r50_50ep.py --num-gpus 8
from ..common.coco_gpu import dataloader, lr_multiplier, optimizer, train
from ..common.models.deformable_detr import model

optimizer.lr = 2e-4
train.output_dir = "./output/coco/deformable_detr_r50_50ep"
