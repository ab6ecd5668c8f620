# D3ETR MixMatcher, COCO 2017, Conditional DETR R101 -> R50, 50 epochs (GPU).
# Teacher: teachers/conditional_detr_r101.py (convert it first: docs/converting_teachers.md);
# baseline student: coco/conditional_detr_r50_50ep.py.
#   python train_net.py --num-gpus 8 --config-file \
#       d3etr/coco_conditional_detr_r101_to_r50_50ep.py
from ..coco.conditional_detr_r50_50ep import dataloader, lr_multiplier, optimizer, train
from ..coco.conditional_detr_r50_50ep import model as _student
from ..common.distill_coco import coco_pair as _coco_pair
from ..teachers.conditional_detr_r101 import model as _teacher
from ..teachers.conditional_detr_r101 import train as _teacher_train

model = _coco_pair(_student, _teacher, _teacher_train.init_checkpoint, "d3etr")
train.output_dir = "./output/d3etr/coco_conditional_detr_r101_to_r50_50ep"
