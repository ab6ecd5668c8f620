"""Checkpoint helpers: the ``detrdistill://`` path prefix for locally cached checkpoints,
loading checkpoint files without unrestricted unpickling (:func:`safe_load`) and loading
``train.init_checkpoint`` into a model (:func:`load_init_checkpoint`)."""

from .init_checkpoint import (
    DISTILLATION_PREFIXES,
    InitCheckpointer,
    describe_key_mismatch,
    extract_student_state_dict,
    is_distillation_state_dict,
    load_init_checkpoint,
)
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
from .shipped import SHIPPED, ShippedWeights, shipped_path, verify_shipped

__all__ = [
    "CHECKPOINTS_ENV",
    "DISTILLATION_PREFIXES",
    "PREFIX",
    "SAFE_GLOBALS",
    "SHIPPED",
    "ShippedWeights",
    "CheckpointReadError",
    "DetrDistillHandler",
    "InitCheckpointer",
    "UnsafeCheckpointError",
    "checkpoint_cache_dir",
    "describe_key_mismatch",
    "extract_student_state_dict",
    "is_distillation_state_dict",
    "load_init_checkpoint",
    "register_path_handler",
    "safe_globals_names",
    "safe_load",
    "shipped_path",
    "verify_shipped",
]

register_path_handler()
