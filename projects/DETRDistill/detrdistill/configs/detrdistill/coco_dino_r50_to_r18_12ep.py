# DETRDistill (a)+(b)+(c), COCO 2017, DINO R50 -> R18, 4-scale, 12 epochs (GPU).
# Teacher: teachers/dino_r50_4scale_12ep.py (49.0 AP; convert it first:
# docs/converting_teachers.md); baseline student: coco/dino_r18_4scale_12ep.py. The student's
# denoising queries never reach a distillation term.
#   python train_net.py --num-gpus 8 --config-file detrdistill/coco_dino_r50_to_r18_12ep.py
from ..coco.dino_r18_4scale_12ep import dataloader, lr_multiplier, optimizer, train
from ..coco.dino_r18_4scale_12ep import model as _student
from ..common.distill_coco import coco_pair as _coco_pair
from ..teachers.dino_r50_4scale_12ep import model as _teacher
from ..teachers.dino_r50_4scale_12ep import train as _teacher_train

model = _coco_pair(_student, _teacher, _teacher_train.init_checkpoint, "detrdistill")
train.output_dir = "./output/detrdistill/coco_dino_r50_to_r18_12ep"
