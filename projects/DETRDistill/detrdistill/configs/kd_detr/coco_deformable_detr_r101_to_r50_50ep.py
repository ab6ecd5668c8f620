# KD-DETR, COCO 2017, Deformable DETR R101 -> R50, 50 epochs (GPU): the paper's Table 2 pair
# (44.5 -> 48.3 AP). The single-stage teacher's queries are learned embeddings with (x, y)
# reference points, so the specific points are its queries themselves (adapter where widths
# differ); the general points reach both models as their centres' sine embedding with zero
# content (DeformableDETR.queries_from_boxes).
# Teacher: teachers/deformable_detr_r101.py (train or convert it first:
# docs/converting_teachers.md); baseline student: coco/deformable_detr_r50_50ep.py.
#   python train_net.py --num-gpus 8 --config-file \
#       kd_detr/coco_deformable_detr_r101_to_r50_50ep.py
from ..coco.deformable_detr_r50_50ep import dataloader, lr_multiplier, optimizer, train
from ..coco.deformable_detr_r50_50ep import model as _student
from ..common.distill_coco import coco_pair as _coco_pair
from ..common.distill_losses import kd_detr_specific_queries as _specific
from ..teachers.deformable_detr_r101 import model as _teacher
from ..teachers.deformable_detr_r101 import train as _teacher_train

model = _coco_pair(_student, _teacher, _teacher_train.init_checkpoint, "kd_detr")
model.group_builders.kd_specific_points = _specific
train.output_dir = "./output/kd_detr/coco_deformable_detr_r101_to_r50_50ep"
