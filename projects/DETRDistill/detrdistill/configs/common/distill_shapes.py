# A distillation run on the embedded shapes dataset: the tiny Deformable DETR trained 4,000
# iterations teaches a fresh tiny one, on the student's CPU schedule (1,500 iterations; the
# README's table uses train.max_iter=500). The teacher ships with the package (fp16, sha256
# checked; AP 78.4 on shapes_val; detrdistill/checkpoint/shipped.py records how it was trained);
# to use your own, train shapes/deformable_detr_tiny_teacher.py and set model.teacher_weights.
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
    teacher_weights="detrdistill://shipped/shapes_deformable_detr_tiny_teacher.pth",
    allow_random_teacher=False,
    teacher_half_precision=False,
    layer_mapping="last_aligned",
    losses={},
    loss_weights={},
)
