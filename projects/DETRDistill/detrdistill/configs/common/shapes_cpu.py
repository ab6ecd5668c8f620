# Data, optimizer, schedule and training options shared by the tiny CPU configs on the embedded
# shapes dataset. About 0.25 s per iteration for the tiny models on 2 CPU cores.
from .data.shapes import dataloader
from .optim import AdamW as optimizer
from .schedule import lr_multiplier
from .train import train

optimizer.lr = 5e-4  # a higher lr than COCO's 1e-4/2e-4 converges much faster on short CPU runs

train.max_iter = 2000  # 8 epochs of 2,000 images at batch 8
train.eval_period = 1000
train.checkpointer.period = 500
train.seed = 0
dataloader.evaluator.output_dir = "${...train.output_dir}/inference"
