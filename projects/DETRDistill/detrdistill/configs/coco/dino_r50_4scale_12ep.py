# DINO R50 4-scale, COCO 2017, 12 epochs at total batch 16 (GPU): the official recipe (lr 1e-4,
# backbone x0.1, weight decay 1e-4, gradient clipping 0.1, lr x0.1 after epoch 11).
#   python train_net.py --config-file coco/dino_r50_4scale_12ep.py --num-gpus 8
# Fewer GPUs or bfloat16 are overrides, e.g. --num-gpus 4 train.amp.enabled=True.
from ..common.coco_12ep import to_12_epochs as _to_12_epochs
from ..common.coco_gpu import dataloader, lr_multiplier, optimizer, train
from ..common.models.dino import model

_to_12_epochs(train, lr_multiplier)
optimizer.lr = 1e-4
train.output_dir = "./output/coco/dino_r50_4scale_12ep"
