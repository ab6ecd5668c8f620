"""Command line of ``train_net.py``: argument parser and config loading."""

from __future__ import annotations

import argparse
import os
import sys

from detectron2.config import LazyConfig
from detectron2.engine import default_setup
from omegaconf import DictConfig

__all__ = ["argument_parser", "resolve_config_file", "setup"]

_EPILOG = """
Examples:
  Train on one machine with 8 GPUs:
    $ {prog} --config-file <config> --num-gpus 8 train.device=cuda
  Train on CPU in 2 processes (gloo backend), e.g. as a smoke test:
    $ {prog} --config-file <config> --num-gpus 2 train.max_iter=2
  Evaluate a checkpoint:
    $ {prog} --config-file <config> --eval-only train.init_checkpoint=/path/model_final.pth
  Resume the run in train.output_dir from its last checkpoint:
    $ {prog} --config-file <config> --resume
  Two machines (run on each, with its own --machine-rank):
    $ {prog} --config-file <config> --num-gpus 8 --num-machines 2 --machine-rank 0 \\
        --dist-url tcp://<host of machine 0>:<free port> train.device=cuda

<config> is a LazyConfig file path or a packaged config name (see
`python -c "import detrdistill.model_zoo as z; print(z.list_configs())"`).
"""


def argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """Build the parser of ``train_net.py`` (detectron2's flags, documented for CPU use).

    Args:
        epilog: text shown after the options; defaults to usage examples.

    Returns:
        argparse.ArgumentParser: parses ``--config-file``, ``--resume``, ``--eval-only``,
        ``--num-gpus``, ``--num-machines``, ``--machine-rank``, ``--dist-url`` and trailing
        ``key=value`` config overrides (``opts``).
    """
    prog = os.path.basename(sys.argv[0]) or "train_net.py"
    parser = argparse.ArgumentParser(
        epilog=epilog if epilog is not None else _EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config-file",
        required=True,
        metavar="FILE_OR_NAME",
        help="LazyConfig .py file, or a packaged config name such as 'coco/<file>.py' "
        "(optionally prefixed 'DETRDistill/', '.py' optional)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from the last checkpoint in train.output_dir (iteration, optimizer, "
        "LR schedule, grad scaler); without a checkpoint, start from train.init_checkpoint",
    )
    parser.add_argument("--eval-only", action="store_true", help="only evaluate")
    parser.add_argument(
        "--num-gpus",
        type=int,
        default=1,
        help="number of processes per machine: one per GPU with train.device=cuda (NCCL), "
        "or CPU worker processes (gloo) when CUDA is not available (on a GPU host, "
        "CUDA_VISIBLE_DEVICES= selects CPU processes)",
    )
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="rank of this machine (0..num_machines-1)"
    )
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="torch.distributed init URL; 'auto' picks a free local port (one machine only); "
        "use tcp://<host of machine 0>:<port> for several machines",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides 'path.key=value', e.g. train.max_iter=100 train.device=cuda",
    )
    return parser


def resolve_config_file(config_file: str) -> str:
    """Return the path of a config given as a file path or as a packaged config name.

    Args:
        config_file: an existing file path, or a name understood by
            :func:`detrdistill.model_zoo.get_config_file`.

    Returns:
        str: path of the config file.

    Raises:
        RuntimeError: if it is neither (the message lists close packaged names).
    """
    if os.path.isfile(config_file):
        return config_file
    from .. import model_zoo

    return model_zoo.get_config_file(config_file)


def setup(args: argparse.Namespace) -> DictConfig:
    """Load the config, apply overrides and run detectron2's ``default_setup``.

    ``default_setup`` creates ``train.output_dir``, sets up logging, dumps the full config to
    ``output_dir/config.yaml`` and seeds python/numpy/torch from ``train.seed`` (plus the rank;
    a negative seed means a random one).

    Args:
        args: parsed command line of :func:`argument_parser`; not modified.

    Returns:
        DictConfig: the final config.
    """
    args = argparse.Namespace(**vars(args))
    args.config_file = resolve_config_file(args.config_file)
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts or [])
    default_setup(cfg, args)
    return cfg
