"""Learning-rate multipliers (``lr_multiplier`` in the LazyConfig): step decay with warm-up.

* ``lr_multiplier``: decay by 0.1 at 80% of ``train.max_iter``, tied to it by interpolation, so
  it follows ``train.max_iter`` overrides. Only usable in a config that also has ``train``.
* ``lr_multiplier_{12,24,36,50}ep``: COCO schedules at total batch size 16, counted as 7,500
  iterations per epoch (train2017 has 117,266 annotated images: 7,330 iterations, rounded up as
  in detrex). Set ``train.max_iter`` to the matching length: 12ep 90,000 (decay at epoch 11),
  24ep 180,000 (epoch 20), 36ep 270,000 (epoch 30), 50ep 375,000 (epoch 40).
"""

from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from detrdistill.engine.schedule import multistep_lr_multiplier

_ITERS_PER_EPOCH = 7500  # COCO train2017 at total batch size 16


def _coco_step_schedule(epochs, decay_epoch, warmup_iters=0):
    total = epochs * _ITERS_PER_EPOCH
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=[1.0, 0.1],
            milestones=[decay_epoch * _ITERS_PER_EPOCH, total],
        ),
        warmup_length=warmup_iters / total,
        warmup_method="linear",
        warmup_factor=0.001,
    )


lr_multiplier = L(multistep_lr_multiplier)(
    max_iter="${train.max_iter}",
    decay_fractions=(0.8,),
    gamma=0.1,
    warmup_iters=0,
    warmup_factor=0.001,
)

lr_multiplier_12ep = _coco_step_schedule(epochs=12, decay_epoch=11)
lr_multiplier_24ep = _coco_step_schedule(epochs=24, decay_epoch=20)
lr_multiplier_36ep = _coco_step_schedule(epochs=36, decay_epoch=30)
lr_multiplier_50ep = _coco_step_schedule(epochs=50, decay_epoch=40)
