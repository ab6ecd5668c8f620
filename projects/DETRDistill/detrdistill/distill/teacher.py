"""Loading and freezing the teacher of a distillation run."""

from __future__ import annotations

import logging
import os

import torch
from detectron2.utils.file_io import PathManager
from torch import nn

from ..checkpoint import (
    CheckpointReadError,
    UnsafeCheckpointError,
    describe_key_mismatch,
    safe_load,
)

__all__ = ["load_teacher_weights", "freeze"]

logger = logging.getLogger(__name__)


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    try:
        local = PathManager.get_local_path(path)
    except FileNotFoundError as error:  # e.g. a detrdistill:// file not converted yet
        message = f"teacher checkpoint (config key model.teacher_weights): {error}"
        raise FileNotFoundError(message) from error
    if not os.path.isfile(local):
        raise FileNotFoundError(
            f"teacher checkpoint {path!r} (config key model.teacher_weights) does not exist; "
            "train the teacher first or point the key at its model_final.pth"
        )
    try:
        checkpoint = safe_load(local)
    except CheckpointReadError as error:  # truncated file, refused types, wrong format
        hint = (
            " Published checkpoints must be converted first: python -m detrdistill.convert "
            "(see docs/converting_teachers.md)."
            if isinstance(error, UnsafeCheckpointError)
            else ""
        )
        raise RuntimeError(
            f"could not read teacher checkpoint {path!r} (config key model.teacher_weights): "
            f"{error}{hint}"
        ) from error
    if isinstance(checkpoint, dict) and "model" in checkpoint:
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f"teacher checkpoint {path!r} does not hold a state dict")
    return {key.removeprefix("module."): value for key, value in checkpoint.items()}


def load_teacher_weights(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into ``teacher`` strictly.

    A distillation run against a partly initialised teacher is silently wrong, so missing keys,
    unexpected keys and shape mismatches all raise, naming the keys.

    Raises:
        FileNotFoundError, RuntimeError, ValueError: with the file and the offending keys.
    """
    state = _read_state_dict(path)
    if "student." in "".join(list(state)[:5]) or any(k.startswith("teacher.") for k in state):
        raise ValueError(
            f"{path!r} is a distillation checkpoint (keys start with 'student.'/'teacher.'); "
            "export its student with `python -m detrdistill.distill.export` to use it as a teacher"
        )
    expected = teacher.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    problems = describe_key_mismatch(missing, unexpected, mismatched)
    if problems:
        raise ValueError(
            f"teacher checkpoint {path!r} does not fit the teacher built from model.teacher "
            f"({type(teacher).__name__}): {problems}"
        )
    teacher.load_state_dict(state, strict=True)
    logger.info("Loaded teacher weights from %s (%d tensors)", path, len(state))


def freeze(module: nn.Module) -> nn.Module:
    """Turn off gradients of every parameter and put the module in eval mode."""
    module.requires_grad_(False)
    return module.eval()
