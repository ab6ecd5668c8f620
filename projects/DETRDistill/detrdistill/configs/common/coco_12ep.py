# The 12-epoch COCO schedule (lr x0.1 after epoch 11) as overrides of a 50-epoch config:
#   train.merge_with(schedule_12ep.train); lr_multiplier.merge_with(schedule_12ep.lr_multiplier)
_ITERS_PER_EPOCH = 7500

schedule_12ep = dict(
    train=dict(
        max_iter=12 * _ITERS_PER_EPOCH,
        eval_period=2 * _ITERS_PER_EPOCH,
        checkpointer=dict(period=2 * _ITERS_PER_EPOCH),
    ),
    lr_multiplier=dict(decay_fractions=[11 / 12]),
)
