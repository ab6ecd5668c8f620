# The 12-epoch COCO schedule (lr x0.1 after epoch 11) as overrides of a 50-epoch config:
#   from ..common.coco_12ep import to_12_epochs as _to_12_epochs
#   _to_12_epochs(train, lr_multiplier)
_ITERS_PER_EPOCH = 7500

schedule_12ep = dict(
    train=dict(
        max_iter=12 * _ITERS_PER_EPOCH,
        eval_period=2 * _ITERS_PER_EPOCH,
        checkpointer=dict(period=2 * _ITERS_PER_EPOCH),
    ),
    lr_multiplier=dict(decay_fractions=[11 / 12]),
)


def to_12_epochs(train, lr_multiplier):
    """Set the 12-epoch schedule (``schedule_12ep``) on a 50-epoch config's ``train`` and
    ``lr_multiplier``, in place."""
    train.merge_with(schedule_12ep["train"])
    lr_multiplier.merge_with(schedule_12ep["lr_multiplier"])
