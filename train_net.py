#!/usr/bin/env python
"""Train or evaluate a DETRDistill LazyConfig (same shape as detectron2's lazyconfig_train_net).

Usage::

    python train_net.py --config-file <file.py or packaged name> [--eval-only] [--resume] \\
        [--num-gpus N] [--num-machines M --machine-rank R --dist-url URL] [key=value ...]

``--num-gpus`` is the number of processes per machine. With ``train.device=cuda`` each process
drives one GPU (NCCL); without CUDA the processes train on the CPU and talk over gloo, e.g.
``--num-gpus 2 train.max_iter=2`` as a multi-process smoke test. Keep
``dataloader.train.total_batch_size`` divisible by the total number of processes. The logic lives
in :mod:`detrdistill.engine`; ``python train_net.py -h`` lists examples.
"""

from __future__ import annotations

import argparse

from detectron2.engine import launch

import detrdistill  # noqa: F401  (registers models, datasets and the model-zoo names)
from detrdistill.engine import argument_parser, do_eval_only, do_train, setup
from detrdistill.engine.train_net_cli import ConfigOverrideError, load_config


def main(args: argparse.Namespace):
    """Run in every process: set up, then evaluate or train.

    Args:
        args: parsed command line of :func:`detrdistill.engine.argument_parser`.

    Returns:
        dict or DETRTrainer: evaluation results with ``--eval-only``, else the trainer.
    """
    cfg = setup(args)
    if args.eval_only:
        return do_eval_only(cfg)
    return do_train(cfg, resume=args.resume)


def invoke_main() -> None:
    """Parse the command line, check the config and its overrides (exit code 2 with the
    message when refused) and launch :func:`main` in ``--num-gpus`` processes per machine."""
    parser = argument_parser()
    args = parser.parse_args()
    if args.num_machines > 1 and args.dist_url == "auto":
        parser.error("--num-machines > 1 needs --dist-url tcp://<host of machine 0>:<port>")
    try:  # an unknown config name or a refused override ends here, before processes start
        load_config(args.config_file, args.opts)
    except (ConfigOverrideError, RuntimeError) as error:
        parser.error(str(error))
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
