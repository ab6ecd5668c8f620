# D3ETR MixMatcher with attention terms, COCO 2017, DINO R50 -> R18, 4-scale, 12 epochs (GPU).
# Teacher: teachers/dino_r50_4scale_12ep.py (49.0 AP; convert it first:
# docs/converting_teachers.md); baseline student: coco/dino_r18_4scale_12ep.py. The student's
# denoising queries never reach a distillation term.
#   python train_net.py --num-gpus 8 --config-file d3etr/coco_dino_r50_to_r18_12ep.py
from ..coco.dino_r18_4scale_12ep import dataloader, lr_multiplier, optimizer, train
from ..coco.dino_r18_4scale_12ep import model as _student
from ..common.distill_coco import model
from ..common.distill_losses import d3etr_losses as _losses
from ..common.distill_losses import d3etr_weights as _weights
from ..teachers.dino_r50_4scale_12ep import model as _teacher
from ..teachers.dino_r50_4scale_12ep import train as _teacher_train

model.update(student=_student, teacher=_teacher, teacher_weights=_teacher_train.init_checkpoint)
model.losses = {name: _losses[name] for name in ("adaptive", "fixed")}
model.loss_weights = {name: _weights[name] for name in model.losses}
train.output_dir = "./output/d3etr/coco_dino_r50_to_r18_12ep"
