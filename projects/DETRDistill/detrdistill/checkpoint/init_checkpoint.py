"""Loading ``train.init_checkpoint`` into a model: safe reading, distillation runs, strict mode.

:class:`InitCheckpointer` is detectron2's ``DetectionCheckpointer`` (paths, URLs, ``.pkl`` model
zoo files, ``module.`` prefixes, ``pixel_mean``/``pixel_std`` tolerance) with three changes:

* ``.pth`` files are read with :func:`~detrdistill.checkpoint.safe_load` (weights-only plus the
  harmless types of published checkpoints); unreadable files raise
  :class:`~detrdistill.checkpoint.CheckpointReadError` saying what is wrong and what to do.
* A checkpoint of a distillation run (``student.*``, ``teacher.*``, ``distill_losses.*``,
  ``group_builders.*`` keys) given to a model without ``student.*`` keys (a detector, or the
  student of a distillation model) loads its ``student.*`` part, with an INFO line saying so.
* ``strict=True`` (``--eval-only``): a checkpoint that does not fit the model exactly raises
  ``ValueError`` naming the missing, unexpected and shape-mismatched keys, instead of
  detectron2's warning and randomly initialised weights.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

from .safe_load import safe_load

__all__ = [
    "DISTILLATION_PREFIXES",
    "STUDENT_PREFIX",
    "InitCheckpointer",
    "extract_student_state_dict",
    "is_distillation_state_dict",
    "load_init_checkpoint",
]

logger = logging.getLogger(__name__)

STUDENT_PREFIX = "student."
#: Top-level submodules of ``DistillationDetector``: the key prefixes of its checkpoints.
#: (``query_adapter.*``: the teacher-query adapter of checkpoints written before query groups.)
DISTILLATION_PREFIXES = (
    STUDENT_PREFIX,
    "teacher.",
    "distill_losses.",
    "group_builders.",
    "query_adapter.",
)


def _strip_module(state: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).removeprefix("module."): value for key, value in state.items()}


def is_distillation_state_dict(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` is a ``DistillationDetector`` state dict (has ``student.*`` keys)."""
    return any(key.startswith(STUDENT_PREFIX) for key in _strip_module(state))


def extract_student_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``student.*`` entries of a DistillationDetector state dict, prefix removed.

    A DDP ``module.`` prefix is removed first.

    Raises:
        ValueError: when no key starts with ``student.`` (not a distillation checkpoint).
    """
    state = _strip_module(state)
    student = {
        key[len(STUDENT_PREFIX) :]: value
        for key, value in state.items()
        if key.startswith(STUDENT_PREFIX)
    }
    if not student:
        raise ValueError(
            "no 'student.*' keys found: this is not a checkpoint of a DistillationDetector "
            f"(first keys: {list(state)[:3]})"
        )
    return student


def _show(keys: list[str], limit: int = 8) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def describe_key_mismatch(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    """One line naming the keys a checkpoint lacks, has in excess, or has with other shapes
    ("" when it fits).

    Args:
        missing: keys of the model absent from the checkpoint.
        unexpected: keys of the checkpoint the model does not have.
        mismatched: ``"key: checkpoint (shape) vs model (shape)"`` entries.
    """
    problems = []
    for what, keys in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", mismatched),
    ):
        if keys:
            problems.append(f"{what} ({len(keys)}): {_show(sorted(keys))}")
    return "; ".join(problems)


class InitCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` for ``train.init_checkpoint`` (see the module docstring).

    Args:
        model: the module to load into (the detector, or a distillation model's student).
        strict: raise when the checkpoint does not fit ``model`` exactly.
        config_key: how the path is named in messages.
    """

    def __init__(
        self, model: nn.Module, *, strict: bool = False, config_key: str = "train.init_checkpoint"
    ):
        super().__init__(model, save_to_disk=False)
        self.strict = strict
        self.config_key = config_key
        self._path = ""

    def load(self, path: str, *args, **kwargs) -> dict[str, Any]:
        self._path = path
        return super().load(path, *args, **kwargs)

    def _torch_load(self, f: str) -> dict[str, Any]:
        data = safe_load(f)
        if not isinstance(data, Mapping):
            raise ValueError(
                f"{self.config_key} {self._path!r} holds a {type(data).__name__}, not a state "
                "dict or a checkpoint dict with 'model'"
            )
        return dict(data)

    def _load_model(self, checkpoint: dict[str, Any]):
        state = checkpoint.get("model")
        if not isinstance(state, Mapping):
            raise ValueError(
                f"{self.config_key} {self._path!r}: its 'model' entry is a "
                f"{type(state).__name__}, not a state dict"
            )
        model_has_student = any(k.startswith(STUDENT_PREFIX) for k in self.model.state_dict())
        if not model_has_student and is_distillation_state_dict(state):
            checkpoint["model"] = extract_student_state_dict(state)
            logger.info(
                "%s %s is a distillation checkpoint: loading its student.* part (%d tensors) "
                "into %s; teacher.*, distill_losses.* and group_builders.* are not used "
                "(`python -m detrdistill.distill.export` writes the student alone)",
                self.config_key,
                self._path,
                len(checkpoint["model"]),
                type(self.model).__name__,
            )
        incompatible = super()._load_model(checkpoint)
        if self.strict:
            self._raise_if_incompatible(incompatible)
        return incompatible

    def _raise_if_incompatible(self, incompatible) -> None:
        missing = sorted(incompatible.missing_keys)
        unexpected = sorted(incompatible.unexpected_keys)
        mismatched = sorted(
            f"{key}: checkpoint {tuple(ckpt)} vs model {tuple(model)}"
            for key, ckpt, model in incompatible.incorrect_shapes
        )
        problems = describe_key_mismatch(missing, unexpected, mismatched)
        if not problems:
            return
        raise ValueError(
            f"{self.config_key} {self._path!r} does not fit the model "
            f"({type(self.model).__name__}): " + problems + ". Nothing is evaluated "
            "with partly random weights: point the key at a checkpoint of this config's model "
            "(for a distillation run, its model_final.pth or the student exported by "
            "`python -m detrdistill.distill.export`)."
        )


def load_init_checkpoint(
    model: nn.Module,
    path: str,
    *,
    strict: bool = False,
    config_key: str = "train.init_checkpoint",
) -> dict[str, Any]:
    """Load ``path`` into ``model`` with :class:`InitCheckpointer`; nothing to do if empty.

    Args:
        model: the module to load into (a DDP wrapper is unwrapped by the checkpointer).
        path: checkpoint path, URL or ``detrdistill://`` name; "" loads nothing.
        strict: raise ``ValueError`` naming the keys when the checkpoint does not fit.
        config_key: how the path is named in messages.

    Returns:
        dict: what the checkpoint holds besides the weights (``iteration`` etc.).
    """
    if not path:
        return {}
    return InitCheckpointer(model, strict=strict, config_key=config_key).load(path)
