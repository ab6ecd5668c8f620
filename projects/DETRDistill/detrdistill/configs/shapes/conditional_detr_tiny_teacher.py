# The teacher of the embedded-data Conditional DETR pair: the tiny Conditional DETR (from the
# shipped shapes-pretrained backbone) trained 4,000 iterations, 8x the students' 500-iteration
# schedule; its student is shapes/conditional_detr_nano.py.
#   python train_net.py --config-file shapes/conditional_detr_tiny_teacher.py
from .conditional_detr_tiny import dataloader, lr_multiplier, model, optimizer, train

train.max_iter = 4000
train.eval_period = 1000
train.checkpointer.period = 500
train.output_dir = "./output/shapes/conditional_detr_tiny_teacher"
