# KD-DETR, COCO 2017, DAB-DETR R50 -> R18, 50 epochs (GPU): the paper's ablation pair (36.2 ->
# 41.4 AP) and the pair of the official code. Specific points: the teacher's 300 anchors;
# general points: 300 uniform random boxes a step.
# Teacher: teachers/dab_detr_r50.py (convert it first: docs/converting_teachers.md);
# baseline student: coco/dab_detr_r18_50ep.py (needs an R-18 ImageNet file, see there).
#   python train_net.py --num-gpus 8 --config-file kd_detr/coco_dab_detr_r50_to_r18_50ep.py
from ..coco.dab_detr_r18_50ep import dataloader, lr_multiplier, optimizer, train
from ..coco.dab_detr_r18_50ep import model as _student
from ..common.distill_coco import coco_pair as _coco_pair
from ..teachers.dab_detr_r50 import model as _teacher
from ..teachers.dab_detr_r50 import train as _teacher_train

model = _coco_pair(_student, _teacher, _teacher_train.init_checkpoint, "kd_detr")
train.output_dir = "./output/kd_detr/coco_dab_detr_r50_to_r18_50ep"
