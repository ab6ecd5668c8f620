"""Training options shared by every experiment: the ``train`` dict of the LazyConfig.

detectron2's keys (``tools/lazyconfig_train_net.py``) plus ``seed``, ``amp.dtype``,
``clip_grad`` and ``loss_weight_schedules``. Usual command-line overrides:

* ``train.device=cuda`` to train on GPUs (the default is the CPU, so that configs load and run
  anywhere; with ``--num-gpus N`` one process per GPU).
* ``train.amp.enabled=True`` (``train.amp.dtype=bfloat16`` works on CUDA and CPU without loss
  scaling; ``float16`` uses a GradScaler, for GPUs without bfloat16).
* ``train.max_iter``, ``train.output_dir``, ``train.init_checkpoint``, ``train.seed``.
"""

train = dict(
    output_dir="./output",
    # Model weights to start from (path, URL, detectron2:// or detrdistill://); "" for none.
    init_checkpoint="",
    # --eval-only with an empty init_checkpoint is an error (a random model's AP means nothing)
    # unless this is True.
    allow_random_weights=False,
    max_iter=90000,
    amp=dict(enabled=False, dtype="bfloat16"),
    # Arguments of DistributedDataParallel (used when more than one process runs).
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    checkpointer=dict(period=5000, max_to_keep=100),
    # Evaluate every eval_period iterations (0: only after the last one).
    eval_period=5000,
    log_period=20,
    device="cpu",
    # >= 0: python/numpy/torch seeded with seed + rank (reproducible); < 0: a random seed.
    seed=-1,
    # Clip the total gradient norm (DETR: 0.1, L2); computed after unscaling under float16 AMP.
    clip_grad=dict(enabled=True, max_norm=0.1, norm_type=2.0),
    # Loss-key pattern (fnmatch) -> ParamScheduler (or number) of training progress; the factor
    # multiplies the matching loss terms, e.g. {"loss_distill_*": L(LinearParamScheduler)(
    # start_value=0.0, end_value=1.0)}. Factors are logged as [metric]weight_factor/<pattern>.
    loss_weight_schedules={},
    cudnn_benchmark=False,
)
