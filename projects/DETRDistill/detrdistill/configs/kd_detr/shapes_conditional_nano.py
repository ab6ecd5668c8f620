# KD-DETR on the embedded-data Conditional DETR pair (shipped tiny Conditional DETR teacher ->
# nano student): the teacher's 30 queries as specific points (its (x, y) reference points and
# queries through the width adapter) and 30 general points a step.
#   python train_net.py --config-file kd_detr/shapes_conditional_nano.py
from ..common.distill_losses import distillation_method as _method
from ..common.distill_losses import kd_detr_specific_queries as _specific_queries
from ..common.distill_shapes_conditional import dataloader, lr_multiplier, model, optimizer, train

model.update(_method("kd_detr"))
model.group_builders.kd_specific_points = _specific_queries
model.group_builders.kd_general_points.num_points = 30
train.output_dir = "./output/kd_detr/shapes_conditional_nano"
