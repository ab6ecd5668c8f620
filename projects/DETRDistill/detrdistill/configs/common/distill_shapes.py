# A distillation run on the embedded shapes dataset: the "small" Deformable DETR teaches the tiny
# one, on the student's CPU schedule. Train the teacher first:
#   python train_net.py --config-file shapes/deformable_detr_small.py
# Experiment configs set model.losses / model.loss_weights and train.output_dir.
from detectron2.config import LazyCall as L

from detrdistill.distill import DistillationDetector

from ..shapes.deformable_detr_small import model as teacher
from ..shapes.deformable_detr_tiny import dataloader, lr_multiplier, optimizer, train
from ..shapes.deformable_detr_tiny import model as student

model = L(DistillationDetector)(
    student=student,
    teacher=teacher,
    teacher_weights="./output/shapes/deformable_detr_small/model_final.pth",
    allow_random_teacher=False,
    teacher_half_precision=False,
    layer_mapping="last_aligned",
    losses={},
    loss_weights={},
)
