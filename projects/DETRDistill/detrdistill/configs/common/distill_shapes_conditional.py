# The embedded-data Conditional DETR pair: the shipped tiny Conditional DETR teacher
# (shapes/conditional_detr_tiny_teacher.py) and the nano student (shapes/conditional_detr_nano.py,
# from the shipped 16-wide pretrained backbone, on the student's schedule and optimizer).
# Experiment configs set model.losses / model.loss_weights and train.output_dir.
from ..shapes.conditional_detr_nano import dataloader, lr_multiplier, optimizer, train
from ..shapes.conditional_detr_nano import model as _student
from ..shapes.conditional_detr_tiny_teacher import model as _teacher
from .distill_shapes import model

model.student = _student
model.teacher = _teacher
model.teacher_weights = "detrdistill://shipped/shapes_conditional_detr_tiny_teacher.pth"
