# The DistillationDetector of a COCO paper pair, with GPU settings. A pair config holds only
# what is its own: the student's COCO config (data, optimizer, schedule and the student model),
# the teacher's config, the method, what the pair changes and its output folder:
#
#   from ..coco.deformable_detr_r18_50ep import dataloader, lr_multiplier, optimizer, train
#   from ..coco.deformable_detr_r18_50ep import model as _student
#   from ..common.distill_coco import coco_pair as _coco_pair
#   from ..teachers.deformable_detr_r50 import model as _teacher
#   from ..teachers.deformable_detr_r50 import train as _teacher_train
#
#   model = _coco_pair(_student, _teacher, _teacher_train.init_checkpoint, "detrdistill")
#   train.output_dir = "./output/detrdistill/coco_deformable_detr_r50_to_r18_50ep"
#
# The 12-epoch pairs import the 50-epoch pair and call common/coco_12ep.py's to_12_epochs.
from detectron2.config import LazyCall as L

from detrdistill.distill import DistillationDetector

from .distill_losses import distillation_method


def coco_pair(student, teacher, teacher_weights, method, components=None):
    """The ``model`` of a COCO distillation pair.

    Args:
        student, teacher: detector configs (``model`` of a ``coco/`` and a ``teachers/`` config).
        teacher_weights: the teacher's converted checkpoint (its config's
            ``train.init_checkpoint``).
        method, components: see :func:`distill_losses.distillation_method`.

    Returns:
        the ``L(DistillationDetector)`` config.
    """
    model = L(DistillationDetector)(
        student=student,
        teacher=teacher,
        teacher_weights=teacher_weights,
        allow_random_teacher=False,
        teacher_half_precision=False,  # True halves the teacher's memory and time on GPUs
        layer_mapping="last_aligned",
        losses={},
        loss_weights={},
    )
    model.update(distillation_method(method, components))
    return model
