# DINO R50 4-scale, COCO 2017, 24 epochs (GPU): lr x0.1 after epoch 20.
from .dino_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

_ITERS_PER_EPOCH = 7500
train.max_iter = 24 * _ITERS_PER_EPOCH
lr_multiplier.decay_fractions = [20 / 24]
train.output_dir = "./output/coco/dino_r50_4scale_24ep"
