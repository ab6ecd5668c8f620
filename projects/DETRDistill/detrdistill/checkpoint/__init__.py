"""Checkpoint helpers: the ``detrdistill://`` path prefix for locally cached checkpoints, and
loading checkpoint files without unrestricted unpickling (:func:`safe_load`)."""

from .path_handler import (
    CHECKPOINTS_ENV,
    PREFIX,
    DetrDistillHandler,
    checkpoint_cache_dir,
    register_path_handler,
)
from .safe_load import (
    SAFE_GLOBALS,
    CheckpointReadError,
    UnsafeCheckpointError,
    safe_globals_names,
    safe_load,
)

__all__ = [
    "CHECKPOINTS_ENV",
    "PREFIX",
    "SAFE_GLOBALS",
    "CheckpointReadError",
    "DetrDistillHandler",
    "UnsafeCheckpointError",
    "checkpoint_cache_dir",
    "register_path_handler",
    "safe_globals_names",
    "safe_load",
]

register_path_handler()
