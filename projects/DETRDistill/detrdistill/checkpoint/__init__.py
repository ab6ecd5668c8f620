"""Checkpoint helpers: the ``detrdistill://`` path prefix for locally cached checkpoints."""

from .path_handler import (
    CHECKPOINTS_ENV,
    PREFIX,
    DetrDistillHandler,
    checkpoint_cache_dir,
    register_path_handler,
)

__all__ = [
    "CHECKPOINTS_ENV",
    "PREFIX",
    "DetrDistillHandler",
    "checkpoint_cache_dir",
    "register_path_handler",
]

register_path_handler()
