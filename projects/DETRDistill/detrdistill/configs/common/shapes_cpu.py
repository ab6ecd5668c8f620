# Data, optimizer, schedule and training options shared by the tiny CPU configs on the embedded
# shapes dataset. About 0.35 s per iteration for the tiny Deformable DETR on 2 CPU cores.
from .data.shapes import dataloader
from .optim import AdamW as optimizer
from .schedule import lr_multiplier
from .train import train

optimizer.lr = 5e-4  # a higher lr than COCO's 1e-4/2e-4 converges much faster on short CPU runs
lr_multiplier.warmup_iters = 50
# The tiny backbones train from scratch: full learning rate (the 0.1x of the COCO configs is
# for ImageNet-initialised backbones).
optimizer.params.lr_backbone_multiplier = 1.0

# Short CPU schedules converge far faster without DETR's multi-scale resize and crop branch:
# train at the test size with horizontal flips only (the synthetic set is varied already).
dataloader.train.mapper.augmentation.min_sizes = (128,)
dataloader.train.mapper.augmentation_with_crop = None

train.max_iter = 1500  # 6 epochs of 2,000 images at batch 8: about 9 minutes on 2 CPU cores
train.eval_period = 500
train.checkpointer.period = 500
train.seed = 0
dataloader.evaluator.output_dir = "${...train.output_dir}/inference"
