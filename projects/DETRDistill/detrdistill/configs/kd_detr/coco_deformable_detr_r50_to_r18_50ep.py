# KD-DETR, COCO 2017, Deformable DETR R50 -> R18, 50 epochs (GPU): the compression pair of the
# DETRDistill and D3ETR configs, for comparison. Points as in
# kd_detr/coco_deformable_detr_r101_to_r50_50ep.py.
# Teacher: teachers/deformable_detr_r50.py (convert it first: docs/converting_teachers.md);
# baseline student: coco/deformable_detr_r18_50ep.py.
#   python train_net.py --num-gpus 8 --config-file \
#       kd_detr/coco_deformable_detr_r50_to_r18_50ep.py
from ..coco.deformable_detr_r18_50ep import dataloader, lr_multiplier, optimizer, train
from ..coco.deformable_detr_r18_50ep import model as _student
from ..common.distill_coco import coco_pair as _coco_pair
from ..common.distill_losses import kd_detr_specific_queries as _specific
from ..teachers.deformable_detr_r50 import model as _teacher
from ..teachers.deformable_detr_r50 import train as _teacher_train

model = _coco_pair(_student, _teacher, _teacher_train.init_checkpoint, "kd_detr")
model.group_builders.kd_specific_points = _specific
train.output_dir = "./output/kd_detr/coco_deformable_detr_r50_to_r18_50ep"
