# A distillation run on the embedded shapes dataset: the tiny Deformable DETR trained 4,000
# iterations teaches a fresh tiny one, on the student's CPU schedule (1,500 iterations; the
# README's table uses train.max_iter=500). Train the teacher first (about 20 min on 2 cores):
#   python train_net.py --config-file shapes/deformable_detr_tiny_teacher.py
# A wider teacher works the same way (model.teacher from shapes/deformable_detr_small.py and its
# weights; the adapters follow the widths). Experiment configs set model.losses /
# model.loss_weights and train.output_dir.
from detectron2.config import LazyCall as L

from detrdistill.distill import DistillationDetector

from ..shapes.deformable_detr_tiny import dataloader, lr_multiplier, optimizer, train
from ..shapes.deformable_detr_tiny import model as student
from ..shapes.deformable_detr_tiny_teacher import model as teacher

model = L(DistillationDetector)(
    student=student,
    teacher=teacher,
    teacher_weights="./output/shapes/deformable_detr_tiny_teacher/model_final.pth",
    allow_random_teacher=False,
    teacher_half_precision=False,
    layer_mapping="last_aligned",
    losses={},
    loss_weights={},
)
