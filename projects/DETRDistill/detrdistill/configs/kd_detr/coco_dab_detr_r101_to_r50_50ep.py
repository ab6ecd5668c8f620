# KD-DETR, COCO 2017, DAB-DETR R101 -> R50, 50 epochs (GPU): the paper's Table 2 pair
# (42.1 -> 45.7 AP, teacher 43.5). Specific points: the teacher's 300 anchors; general points:
# 300 uniform random boxes a step.
# Teacher: teachers/dab_detr_r101.py (convert it first: docs/converting_teachers.md);
# baseline student: coco/dab_detr_r50_50ep.py.
#   python train_net.py --num-gpus 8 --config-file kd_detr/coco_dab_detr_r101_to_r50_50ep.py
from ..coco.dab_detr_r50_50ep import dataloader, lr_multiplier, optimizer, train
from ..coco.dab_detr_r50_50ep import model as _student
from ..common.distill_coco import model
from ..common.distill_losses import kd_detr_losses as _losses
from ..common.distill_losses import kd_detr_points as _points
from ..common.distill_losses import kd_detr_weights as _weights
from ..teachers.dab_detr_r101 import model as _teacher
from ..teachers.dab_detr_r101 import train as _teacher_train

model.update(student=_student, teacher=_teacher, teacher_weights=_teacher_train.init_checkpoint)
model.losses = dict(_losses)
model.loss_weights = dict(_weights)
model.group_builders = dict(_points)
train.output_dir = "./output/kd_detr/coco_dab_detr_r101_to_r50_50ep"
