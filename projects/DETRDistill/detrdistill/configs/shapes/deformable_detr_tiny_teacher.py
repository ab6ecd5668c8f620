# The teacher of the embedded-data distillation configs: the tiny two-stage Deformable DETR trained
# 4,000 iterations (16 epochs), 8x the students' 500-iteration schedule of the README table and
# 2.7x the 1,500 of shapes/deformable_detr_tiny.py. About 20 minutes on 2 CPU cores.
#   python train_net.py --config-file shapes/deformable_detr_tiny_teacher.py
# On 2 CPU cores a teacher's edge comes cheapest from training longer (see the README); the
# wider shapes/deformable_detr_small.py has 2.5x the FLOPs per image (0.93 vs 0.37 GFLOPs).
from .deformable_detr_tiny import dataloader, lr_multiplier, model, optimizer, train

train.max_iter = 4000
train.eval_period = 2000
train.checkpointer.period = 1000
train.output_dir = "./output/shapes/deformable_detr_tiny_teacher"
