"""Model zoo over the LazyConfigs packaged in ``detrdistill/configs/``.

Mirrors ``detectron2.model_zoo``: :func:`get_config_file`, :func:`get_config`, :func:`get`,
:func:`get_checkpoint_url`, plus :func:`list_configs`. Names are paths relative to
``detrdistill/configs/`` (``"coco/<file>.py"``); the ``.py`` suffix and a ``DETRDistill/``
prefix are optional. ``common/*`` files are building blocks, not experiments: they resolve but
are listed only with ``list_configs(include_common=True)``. The folders: ``shapes/`` and
``coco/`` (detectors on the embedded data and on COCO), ``teachers/`` (published COCO teachers,
converted once), and one per distillation method: ``detrdistill/`` (the DETRDistill method of
Chang et al., which the package is named after), ``d3etr/``, ``kd_detr/``.

Importing this module (``import detrdistill`` does) also registers two things, both idempotent:

* the ``detrdistill://`` prefix on detectron2's ``PathManager`` (see
  :mod:`detrdistill.checkpoint.path_handler`);
* ``DETRDistill/<name>`` names in detectron2's own model zoo
  (:func:`register_detectron2_model_zoo`): afterwards
  ``detectron2.model_zoo.get_config("DETRDistill/<name>")`` (and ``get_config_file``,
  ``get_checkpoint_url``, ``get``) resolve our configs; every other name still goes to
  detectron2 unchanged.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from omegaconf import DictConfig

from .checkpoint import PREFIX as CHECKPOINT_PREFIX
from .checkpoint import register_path_handler

__all__ = [
    "CHECKPOINT_PREFIX",
    "CHECKPOINTS",
    "DETECTRON2_PREFIX",
    "configs_root",
    "get",
    "get_checkpoint_url",
    "get_config",
    "get_config_file",
    "list_configs",
    "register_detectron2_model_zoo",
]

logger = logging.getLogger(__name__)

DETECTRON2_PREFIX = "DETRDistill/"

# Config name (relative to configs/, without ".py") -> checkpoint path or URL. Local checkpoints
# use the detrdistill:// prefix (a file in $DETRDISTILL_CHECKPOINTS). The published teachers are
# converted once by the user (docs/converting_teachers.md) into these files.
CHECKPOINTS: dict[str, str] = {
    f"teachers/{name}": f"{CHECKPOINT_PREFIX}teachers/{name}.pth"
    for name in (
        "conditional_detr_r101",
        "dab_detr_r101",
        "dab_detr_r50",
        "deformable_detr_r101",
        "deformable_detr_r50",
        "deformable_detr_r50_box_refine",
        "deformable_detr_r50_two_stage",
        "detr_r101",
        "detr_r50",
        "dino_r101_4scale_12ep_detrex",
        "dino_r50_4scale_12ep",
        "dino_r50_4scale_12ep_detrex",
        "dino_r50_4scale_24ep",
        "dino_r50_4scale_24ep_detrex",
    )
}
# Weights shipped in the package (detrdistill/weights/, sha256-checked: checkpoint/shipped.py).
CHECKPOINTS["shapes/deformable_detr_tiny_teacher"] = (
    f"{CHECKPOINT_PREFIX}shipped/shapes_deformable_detr_tiny_teacher.pth"
)
CHECKPOINTS["shapes/conditional_detr_tiny_teacher"] = (
    f"{CHECKPOINT_PREFIX}shipped/shapes_conditional_detr_tiny_teacher.pth"
)


def configs_root() -> Path:
    """Folder of the packaged configs (``detrdistill/configs``).

    Returns:
        Path: a real directory (configs use relative imports, so they must be files on disk).
    """
    root = importlib.resources.files("detrdistill") / "configs"
    if not isinstance(root, Path):
        raise RuntimeError(
            f"detrdistill's configs are not on the file system ({root!r}); install the package "
            "unzipped (pip install -e . or a regular wheel install)."
        )
    return root


def _normalize(config_path: str) -> str:
    name = str(config_path).replace(os.sep, "/").removeprefix(DETECTRON2_PREFIX).lstrip("/")
    return name if name.endswith(".py") else name + ".py"


def list_configs(include_common: bool = False) -> list[str]:
    """Names of all packaged configs, sorted.

    Args:
        include_common: also list the ``common/`` building blocks.

    Returns:
        list[str]: names like ``"coco/<file>.py"``, usable with every function here.
    """
    root = configs_root()
    names = []
    for path in root.rglob("*.py"):
        name = path.relative_to(root).as_posix()
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        if not include_common and name.startswith("common/"):
            continue
        names.append(name)
    return sorted(names)


def _unknown(kind: str, config_path: str, candidates: list[str]) -> RuntimeError:
    close = difflib.get_close_matches(_normalize(config_path), candidates, n=5, cutoff=0.4)
    hint = f" Close matches: {close}." if close else ""
    return RuntimeError(
        f"{kind} {config_path!r} is not in the DETRDistill model zoo.{hint} "
        "See detrdistill.model_zoo.list_configs()."
    )


def get_config_file(config_path: str) -> str:
    """Path of a packaged config file.

    Args:
        config_path: name relative to ``detrdistill/configs/``, e.g. ``"coco/<file>.py"``
            (``.py`` and a ``DETRDistill/`` prefix optional).

    Returns:
        str: the absolute file path.

    Raises:
        RuntimeError: for an unknown name; the message lists close matches.
    """
    name = _normalize(config_path)
    path = configs_root() / name
    if not path.is_file():
        raise _unknown("Config", config_path, list_configs(include_common=True))
    return str(path)


def get_checkpoint_url(config_path: str) -> str:
    """Checkpoint trained with a packaged config (``detrdistill://`` path or URL).

    Args:
        config_path: a config name as in :func:`get_config_file`.

    Returns:
        str: the checkpoint location from :data:`CHECKPOINTS`.

    Raises:
        RuntimeError: if no checkpoint is listed for the config.
    """
    key = _normalize(config_path).removesuffix(".py")
    if key not in CHECKPOINTS:
        available = sorted(CHECKPOINTS) or "none yet"
        raise RuntimeError(
            f"No trained checkpoint is listed for {config_path!r} (configs with checkpoints: "
            f"{available})."
        )
    return CHECKPOINTS[key]


def get_config(config_path: str, trained: bool = False) -> DictConfig:
    """Load a packaged LazyConfig.

    Args:
        config_path: a config name as in :func:`get_config_file`.
        trained: set ``train.init_checkpoint`` to :func:`get_checkpoint_url` of the config.

    Returns:
        DictConfig: the loaded config.
    """
    cfg = LazyConfig.load(get_config_file(config_path))
    if trained:
        if "train" not in cfg or "init_checkpoint" not in cfg.train:
            raise RuntimeError(f"{config_path!r} has no train.init_checkpoint to set.")
        cfg.train.init_checkpoint = get_checkpoint_url(config_path)
    return cfg


def get(config_path: str, trained: bool = False, device: str | None = None) -> torch.nn.Module:
    """Instantiate the model of a packaged config and load ``train.init_checkpoint``.

    Args:
        config_path: a config name as in :func:`get_config_file`.
        trained: load the trained checkpoint (see :func:`get_config`).
        device: device for the model; default ``train.device`` of the config, else ``"cpu"``.

    Returns:
        torch.nn.Module: the model, in training mode (as detectron2's ``model_zoo.get``).
    """
    cfg = get_config(config_path, trained)
    model = instantiate(cfg.model)
    train = cfg.get("train", {})
    model.to(device or train.get("device", "cpu"))
    checkpoint = train.get("init_checkpoint", "")
    if checkpoint:
        DetectionCheckpointer(model).load(checkpoint)
    return model


def _prefixed(original: Callable[..., str], ours: Callable[[str], str]) -> Callable[..., str]:
    @functools.wraps(original)
    def wrapper(config_path, *args, **kwargs):
        if isinstance(config_path, str) and config_path.startswith(DETECTRON2_PREFIX):
            return ours(config_path)
        return original(config_path, *args, **kwargs)

    wrapper.__detrdistill_original__ = original
    return wrapper


def register_detectron2_model_zoo() -> bool:
    """Make detectron2's model zoo resolve ``DETRDistill/<name>`` to our configs (idempotent).

    Wraps ``get_config_file`` and ``get_checkpoint_url`` of ``detectron2.model_zoo.model_zoo``
    (whose ``get_config`` and ``get`` call them through the module globals) and their re-exports
    in ``detectron2.model_zoo``. Names without the prefix are passed to detectron2 unchanged.
    detectron2 has no plugin mechanism for its model zoo; this is the smallest hook that works.

    Returns:
        bool: False if ``detectron2.model_zoo`` cannot be imported (it needs ``pkg_resources``,
        i.e. ``setuptools<82``); nothing is registered then.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            import detectron2.model_zoo as d2_zoo_pkg
            from detectron2.model_zoo import model_zoo as d2_zoo
    except ImportError as e:
        logger.debug("detectron2.model_zoo unavailable (%s); DETRDistill/ names not registered.", e)
        return False
    for name, ours in (
        ("get_config_file", get_config_file),
        ("get_checkpoint_url", get_checkpoint_url),
    ):
        current = getattr(d2_zoo, name)
        if not hasattr(current, "__detrdistill_original__"):
            current = _prefixed(current, ours)
            setattr(d2_zoo, name, current)
        setattr(d2_zoo_pkg, name, current)
    return True


register_path_handler()
register_detectron2_model_zoo()
