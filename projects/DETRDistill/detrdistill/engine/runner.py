"""Training and evaluation drivers used by ``train_net.py``.

The flow follows detectron2's ``tools/lazyconfig_train_net.py``: instantiate the model, the
optimizer and the train loader from the LazyConfig, wrap the model in DDP, build a
:class:`~detrdistill.engine.train_loop.DETRTrainer`, register the standard hooks, resume or load
``train.init_checkpoint`` and train.
"""

from __future__ import annotations

import functools
import logging

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.engine import default_writers, hooks
from detectron2.engine.train_loop import HookBase
from detectron2.utils import comm
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel

from .ddp import create_ddp_model
from .evaluation import do_test
from .train_loop import DETRTrainer

__all__ = ["build_trainer", "build_hooks", "build_model", "do_train", "do_eval_only"]

logger = logging.getLogger(__name__)


def build_model(cfg: DictConfig) -> torch.nn.Module:
    """Instantiate ``cfg.model`` and move it to ``cfg.train.device``.

    Args:
        cfg: full LazyConfig.

    Returns:
        torch.nn.Module: the model (not DDP-wrapped).
    """
    model = instantiate(cfg.model)
    logger.info("Model:\n%s", model)
    return model.to(cfg.train.get("device", "cpu"))


def build_trainer(
    cfg: DictConfig,
    model: torch.nn.Module,
    data_loader,
    optimizer: torch.optim.Optimizer,
    trainer_cls: type[DETRTrainer] = DETRTrainer,
) -> DETRTrainer:
    """Build the trainer from ``cfg.train`` (``amp``, ``clip_grad``, ``loss_weight_schedules``).

    Args:
        cfg: full LazyConfig.
        model: the (possibly DDP-wrapped) model on its device.
        data_loader: the training data loader.
        optimizer: the optimizer.
        trainer_cls: a :class:`DETRTrainer` subclass to build instead.

    Returns:
        DETRTrainer: the trainer, without hooks.
    """
    train = cfg.train
    amp = train.get("amp", {})
    clip = train.get("clip_grad", {})
    schedules = {
        str(pattern): instantiate(schedule)
        for pattern, schedule in train.get("loss_weight_schedules", {}).items()
    }
    return trainer_cls(
        model,
        data_loader,
        optimizer,
        amp_enabled=amp.get("enabled", False),
        amp_dtype=amp.get("dtype", "bfloat16"),
        clip_grad_max_norm=clip.get("max_norm") if clip.get("enabled", False) else None,
        clip_grad_norm_type=clip.get("norm_type", 2.0),
        loss_weight_schedules=schedules,
    )


def build_hooks(
    cfg: DictConfig,
    model: torch.nn.Module,
    checkpointer: DetectionCheckpointer,
) -> list[HookBase | None]:
    """The standard hooks, in detectron2's order.

    ``IterationTimer``, ``LRScheduler(cfg.lr_multiplier)``, ``PeriodicCheckpointer`` (main
    process), ``EvalHook(train.eval_period, do_test)`` (also after the last iteration) and
    ``PeriodicWriter`` (main process) with ``CommonMetricPrinter`` (progress line with ETA),
    ``JSONWriter`` (``metrics.json``) and ``TensorboardXWriter``.

    Args:
        cfg: full LazyConfig.
        model: the model to evaluate (possibly DDP-wrapped).
        checkpointer: checkpointer of the model and trainer.

    Returns:
        list: hooks for :meth:`~detectron2.engine.TrainerBase.register_hooks` (None entries are
        skipped there).
    """
    train = cfg.train
    is_main = comm.is_main_process()
    return [
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **train.checkpointer) if is_main else None,
        hooks.EvalHook(train.get("eval_period", 0), functools.partial(do_test, cfg, model)),
        hooks.PeriodicWriter(
            default_writers(train.output_dir, train.max_iter),
            period=train.get("log_period", 20),
        )
        if is_main
        else None,
    ]


def do_train(cfg: DictConfig, resume: bool = False) -> DETRTrainer:
    """Train as configured; with ``resume``, continue from the last checkpoint of the run.

    Resuming restores the model, the optimizer, the iteration (and with it the LR schedule,
    which is a function of the iteration) and the grad scaler. The data loader restarts its
    sampler stream, so batches after resuming differ from an uninterrupted run unless every
    batch holds the same images.

    Args:
        cfg: full LazyConfig (``model``, ``optimizer``, ``lr_multiplier``, ``dataloader.train``,
            ``train``).
        resume: resume from ``train.output_dir/last_checkpoint`` if it exists.

    Returns:
        DETRTrainer: the trainer after training.
    """
    model = build_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)

    model = create_ddp_model(model, **cfg.train.get("ddp", {}))
    trainer = build_trainer(cfg, model, train_loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    trainer.register_hooks(build_hooks(cfg, model, checkpointer))

    if resume and checkpointer.has_checkpoint():
        checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=True)
        start_iter = trainer.iter + 1
    else:
        load_init_checkpoint(model, cfg.train.init_checkpoint)
        start_iter = 0
    trainer.train(start_iter, cfg.train.max_iter)
    return trainer


def load_init_checkpoint(model, path: str) -> None:
    """Load ``train.init_checkpoint`` (if set) as detectron2 does, into the right module.

    A model may name the submodule that ``train.init_checkpoint`` is meant for through an
    ``init_checkpoint_module()`` method: the distillation wrapper returns its student, so the key
    keeps its detectron2 meaning there and the teacher is never touched by it.
    """
    if not path:
        return
    module = model.module if isinstance(model, DistributedDataParallel) else model
    target = module
    if hasattr(module, "init_checkpoint_module"):
        target = module.init_checkpoint_module()
    DetectionCheckpointer(target).load(path)


def do_eval_only(cfg: DictConfig) -> dict:
    """Load ``train.init_checkpoint`` into the model and evaluate it.

    Args:
        cfg: full LazyConfig.

    Returns:
        dict: evaluation results of :func:`~detrdistill.engine.evaluation.do_test`.
    """
    model = create_ddp_model(build_model(cfg))
    DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
    return do_test(cfg, model)
