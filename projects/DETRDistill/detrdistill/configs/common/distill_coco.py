# The DistillationDetector of a COCO paper pair, with GPU settings. Pair configs replace
# model.student / model.teacher / model.teacher_weights and pick model.losses.
from detectron2.config import LazyCall as L

from detrdistill.distill import DistillationDetector

from ..coco.deformable_detr_r50_50ep import dataloader, lr_multiplier, optimizer, train
from ..coco.deformable_detr_r50_50ep import model as _student
from ..teachers.deformable_detr_r101 import model as _teacher

model = L(DistillationDetector)(
    student=_student,
    teacher=_teacher,
    teacher_weights="detrdistill://teachers/deformable_detr_r101.pth",
    allow_random_teacher=False,
    teacher_half_precision=False,  # True halves the teacher's memory and time on GPUs
    layer_mapping="last_aligned",
    losses={},
    loss_weights={},
)
