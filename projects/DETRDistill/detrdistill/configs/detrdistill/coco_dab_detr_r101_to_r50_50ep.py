# DETRDistill, COCO 2017, DAB-DETR R101 -> R50, 50 epochs (GPU).
# Teacher: teachers/dab_detr_r101.py (convert it first: docs/converting_teachers.md);
# baseline student: coco/dab_detr_r50_50ep.py.
#   python train_net.py --num-gpus 8 --config-file \
#       detrdistill/coco_dab_detr_r101_to_r50_50ep.py
from ..coco.dab_detr_r50_50ep import dataloader, lr_multiplier, optimizer, train
from ..coco.dab_detr_r50_50ep import model as _student
from ..common.distill_coco import model
from ..common.distill_losses import detrdistill_losses as _losses
from ..common.distill_losses import detrdistill_weights as _weights
from ..teachers.dab_detr_r101 import model as _teacher
from ..teachers.dab_detr_r101 import train as _teacher_train

model.update(student=_student, teacher=_teacher, teacher_weights=_teacher_train.init_checkpoint)
model.losses = {name: _losses[name] for name in ("logits", "feature", "query_prior")}
model.loss_weights = {name: _weights[name] for name in model.losses}
model.losses.feature.num_levels = 1  # single-scale (res5) transformer input
train.output_dir = "./output/detrdistill/coco_dab_detr_r101_to_r50_50ep"
