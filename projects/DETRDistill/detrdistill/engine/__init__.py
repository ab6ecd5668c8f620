"""Training engine: trainer, hooks, DDP helper, evaluation glue and solver helpers.

``train_net.py`` is a thin command line over :func:`setup`, :func:`do_train`,
:func:`do_eval_only` and detectron2's ``launch``.
"""

from .amp import build_grad_scaler, module_device_type, resolve_amp_dtype
from .ddp import create_ddp_model, ddp_device_ids
from .evaluation import do_test
from .loss_weights import apply_loss_weight_schedules, factor_metric_name
from .optim import detr_lr_factor, get_detr_param_groups, name_matches_keywords
from .runner import (
    build_hooks,
    build_model,
    build_train_loader,
    build_trainer,
    check_dataset_num_classes,
    check_test_dataset,
    do_eval_only,
    do_train,
)
from .schedule import multistep_lr_multiplier
from .train_loop import DETRTrainer
from .train_net_cli import argument_parser, resolve_config_file, setup

__all__ = [
    "DETRTrainer",
    "apply_loss_weight_schedules",
    "argument_parser",
    "build_grad_scaler",
    "build_hooks",
    "build_model",
    "build_train_loader",
    "build_trainer",
    "check_dataset_num_classes",
    "check_test_dataset",
    "create_ddp_model",
    "ddp_device_ids",
    "detr_lr_factor",
    "do_eval_only",
    "do_test",
    "do_train",
    "factor_metric_name",
    "get_detr_param_groups",
    "module_device_type",
    "multistep_lr_multiplier",
    "name_matches_keywords",
    "resolve_amp_dtype",
    "resolve_config_file",
    "setup",
]
