"""Training and evaluation drivers used by ``train_net.py``.

The flow follows detectron2's ``tools/lazyconfig_train_net.py``: instantiate the train loader
(seeded and resumable, see :func:`build_train_loader`), the model and the optimizer from the
LazyConfig, wrap the model in DDP, build a :class:`~detrdistill.engine.train_loop.DETRTrainer`,
register the standard hooks, resume or load ``train.init_checkpoint`` and train.
"""

from __future__ import annotations

import functools
import logging

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.data import build_detection_train_loader
from detectron2.engine import default_writers, hooks
from detectron2.engine.train_loop import HookBase
from detectron2.utils import comm
from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import IterableDataset

from ..checkpoint import load_init_checkpoint as _load_checkpoint_into
from ..data import build_detr_train_loader, check_category_ids
from .ddp import create_ddp_model
from .evaluation import do_test
from .train_loop import DETRTrainer

__all__ = [
    "build_eval_model",
    "build_hooks",
    "build_model",
    "build_train_loader",
    "build_trainer",
    "check_dataset_num_classes",
    "check_test_dataset",
    "do_eval_only",
    "do_train",
]

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


_SEEDED_LOADER_TARGETS = (build_detection_train_loader, build_detr_train_loader)


def _num_classes(cfg: DictConfig) -> tuple[str, int] | None:
    """``("model.num_classes", n)`` or, for a distillation wrapper, ``model.student``'s."""
    model = cfg.get("model")
    student = model.get("student") if isinstance(model, DictConfig) else None
    for key, node in (("model", model), ("model.student", student)):
        if isinstance(node, DictConfig) and node.get("num_classes") is not None:
            return f"{key}.num_classes", int(node.num_classes)
    return None


def _dataset_names(dataset_node) -> list[str]:
    """Names in a dataset node (``names=`` of get_detection_dataset_dicts, ``name=`` of ours)."""
    if not isinstance(dataset_node, DictConfig):
        return []
    names = dataset_node.get("names", dataset_node.get("name"))
    if isinstance(names, str):
        return [names]
    if isinstance(names, ListConfig) and all(isinstance(n, str) for n in names):
        return list(names)
    return []


def check_dataset_num_classes(cfg: DictConfig, dataset, dataset_node=None) -> None:
    """Fail if ``dataset`` (dataset dicts) has category ids >= the model's ``num_classes``.

    Args:
        cfg: full LazyConfig (``model.num_classes`` or ``model.student.num_classes``).
        dataset: the instantiated dataset; only a list of dataset dicts is checked.
        dataset_node: its config node, to name the dataset(s) and json file(s) in the error.

    Raises:
        ValueError: see :func:`detrdistill.data.check_category_ids`.
    """
    found = _num_classes(cfg)
    if found is None or not isinstance(dataset, list):
        return
    key, num_classes = found
    check_category_ids(
        dataset, num_classes, num_classes_key=key, dataset_names=_dataset_names(dataset_node)
    )


def check_test_dataset(cfg: DictConfig) -> None:
    """Load ``dataloader.test.dataset`` (when an evaluator is configured) and check its ids."""
    data = cfg.get("dataloader")
    if not isinstance(data, DictConfig) or "evaluator" not in data or "test" not in data:
        return
    node = data.test.get("dataset") if isinstance(data.test, DictConfig) else None
    if node is None or _num_classes(cfg) is None:
        return
    check_dataset_num_classes(cfg, instantiate(node), node)


def build_train_loader(cfg: DictConfig):
    """Build ``cfg.dataloader.train``; detectron2's loader becomes the seeded, resumable one.

    The dataset is instantiated first and checked against the model's ``num_classes``. A node
    whose target is detectron2's ``build_detection_train_loader`` (or
    :func:`~detrdistill.data.build_detr_train_loader`) is built by
    :func:`~detrdistill.data.build_detr_train_loader` with the node's arguments and
    ``seed=train.seed`` (a random shared seed when negative; the checkpoint keeps it), so the
    batches do not depend on the global RNG (e.g. on building a teacher) and ``--resume``
    continues the data stream exactly. Other targets are called as configured.

    Args:
        cfg: full LazyConfig.

    Returns:
        the training data loader (a :class:`~detrdistill.data.SeededTrainLoader` normally).
    """
    node = cfg.dataloader.train
    target = node.get("_target_")
    if isinstance(target, str):
        target = locate(target)
    if "dataset" not in node:
        return instantiate(node)
    dataset = instantiate(node.dataset)
    check_dataset_num_classes(cfg, dataset, node.dataset)
    kwargs = {k: instantiate(v) for k, v in node.items() if k not in ("_target_", "dataset")}
    if target in _SEEDED_LOADER_TARGETS and not isinstance(dataset, IterableDataset):
        seed = cfg.train.get("seed", -1)
        if kwargs.get("seed") is None:
            kwargs["seed"] = int(seed) if seed is not None and seed >= 0 else None
        return build_detr_train_loader(dataset, **kwargs)
    logger.warning(
        "dataloader.train is built by %s, not by a seeded loader: the batches depend on the "
        "global RNG and restart after --resume.",
        target,
    )
    return target(dataset=dataset, **kwargs)


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
    which is a function of the iteration), the grad scaler and, with the seeded loader of
    :func:`build_train_loader`, the data stream: the resumed run sees the batches (images and
    augmentation) of an uninterrupted one, and (in a single process) torch's random state, so
    dropout continues as well.

    Args:
        cfg: full LazyConfig (``model``, ``optimizer``, ``lr_multiplier``, ``dataloader.train``,
            ``train``).
        resume: resume from ``train.output_dir/last_checkpoint`` if it exists.

    Returns:
        DETRTrainer: the trainer after training.
    """
    # The data first: dataset errors (e.g. category ids >= num_classes) come before the model is
    # built, and the seeded loader's batches do not depend on the RNG the model consumes.
    train_loader = build_train_loader(cfg)
    check_test_dataset(cfg)
    model = build_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)

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


def load_init_checkpoint(model, path: str, *, strict: bool = False) -> None:
    """Load ``train.init_checkpoint`` (if set) into the right module.

    A model may name the submodule that ``train.init_checkpoint`` is meant for through an
    ``init_checkpoint_module()`` method: the distillation wrapper returns its student, so the key
    keeps its detectron2 meaning there and the teacher is never touched by it. Reading and
    loading are :class:`~detrdistill.checkpoint.InitCheckpointer`'s: safe unpickling, and the
    ``student.*`` part of a distillation run's checkpoint for a model without ``student.*`` keys.

    Args:
        model: the model, possibly DDP-wrapped.
        path: the checkpoint; "" loads nothing.
        strict: raise ``ValueError`` naming the keys when the checkpoint does not fit the module
            (``--eval-only``); otherwise detectron2's behaviour, a warning.
    """
    if not path:
        return
    module = model.module if isinstance(model, DistributedDataParallel) else model
    target = module
    if hasattr(module, "init_checkpoint_module"):
        target = module.init_checkpoint_module()
    _load_checkpoint_into(target, path, strict=strict)


def _is_distillation_model(node) -> bool:
    """Whether a model config is a teacher-student wrapper (``student`` and ``teacher`` keys)."""
    return isinstance(node, DictConfig) and "student" in node and "teacher" in node


def build_eval_model(cfg: DictConfig) -> torch.nn.Module:
    """The model ``--eval-only`` evaluates, on ``cfg.train.device``.

    For a distillation config (``cfg.model`` with ``student`` and ``teacher``) only
    ``cfg.model.student`` is built: inference is the student alone, so the teacher and its
    ``model.teacher_weights`` file are not needed. Otherwise ``cfg.model``.
    """
    node = cfg.model
    if _is_distillation_model(node):
        logger.info(
            "--eval-only with a distillation config: building and evaluating model.student only "
            "(the teacher and model.teacher_weights are not used for inference)"
        )
        node = node.student
    model = instantiate(node)
    logger.info("Model:\n%s", model)
    return model.to(cfg.train.get("device", "cpu"))


def do_eval_only(cfg: DictConfig) -> dict:
    """Load ``train.init_checkpoint`` strictly into the model and evaluate it.

    The model is :func:`build_eval_model`'s (the student, for a distillation config). The
    checkpoint must fit it exactly: a detector state dict, a detectron2 checkpoint dict with
    ``"model"``, or a distillation run's checkpoint, whose ``student.*`` part is used. Anything
    else raises ``ValueError`` naming the missing, unexpected and mismatched keys.

    Args:
        cfg: full LazyConfig. ``train.allow_random_weights=True`` (default False) permits an
            empty ``train.init_checkpoint``, i.e. evaluating randomly initialised weights.

    Returns:
        dict: evaluation results of :func:`~detrdistill.engine.evaluation.do_test`.

    Raises:
        ValueError: empty ``train.init_checkpoint`` (without the flag), or a checkpoint that
            does not fit.
    """
    path = cfg.train.get("init_checkpoint", "")
    if not path and not cfg.train.get("allow_random_weights", False):
        raise ValueError(
            "--eval-only needs the weights to evaluate: set train.init_checkpoint=<checkpoint> "
            "(e.g. output/<run>/model_final.pth). It is empty, and evaluating a randomly "
            "initialised model is almost certainly a mistake; add train.allow_random_weights=True "
            "if that is what you want (smoke tests)."
        )
    check_test_dataset(cfg)
    model = build_eval_model(cfg)
    if path:
        load_init_checkpoint(model, path, strict=True)
    else:
        logger.warning("--eval-only without train.init_checkpoint: evaluating random weights")
    return do_test(cfg, create_ddp_model(model))
