# Data, optimizer, schedule and training options shared by the COCO configs (GPU settings).
# 8 GPUs x 2 images: python train_net.py --config-file coco/<name>.py --num-gpus 8
# Fewer GPUs: keep dataloader.train.total_batch_size divisible by the number of processes.
from .data.coco import dataloader
from .optim import AdamW as optimizer
from .schedule import lr_multiplier
from .train import train

ITERS_PER_EPOCH = 7500  # train2017 at total batch 16, rounded up as in detrex

optimizer.lr = 1e-4
dataloader.train.total_batch_size = 16
dataloader.evaluator.output_dir = "${...train.output_dir}/inference"

train.device = "cuda"
train.amp.enabled = False  # train.amp.enabled=True train.amp.dtype=bfloat16 on Ampere or newer
train.max_iter = 50 * ITERS_PER_EPOCH  # 50 epochs, lr x0.1 after epoch 40
lr_multiplier.decay_fractions = (0.8,)
train.eval_period = 5 * ITERS_PER_EPOCH
train.checkpointer.period = 5 * ITERS_PER_EPOCH
train.log_period = 20
train.seed = 42
# ImageNet backbone (torchvision weights in detectron2 format, downloaded by detectron2).
# R-18 has no such file in detectron2's zoo: convert torchvision's with detectron2's
# tools/convert-torchvision-to-d2.py and set train.init_checkpoint to the result.
train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
