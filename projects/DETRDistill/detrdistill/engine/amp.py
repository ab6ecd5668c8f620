"""Automatic mixed precision settings: dtype names and the gradient scaler.

Unlike detectron2's ``AMPTrainer`` nothing here requires CUDA: ``torch.autocast`` runs on CPU with
bfloat16, and a :class:`torch.amp.GradScaler` is only needed (and only built) for float16, whose
narrow exponent range makes small gradients underflow. bfloat16 has float32's exponent range, so it
trains without loss scaling on CUDA and on CPU.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_amp_dtype", "build_grad_scaler", "module_device_type"]

_DTYPE_NAMES = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_amp_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Turn a config value into the autocast dtype.

    Args:
        dtype: ``"float16"``/``"fp16"``/``"half"``, ``"bfloat16"``/``"bf16"``, or a
            ``torch.dtype`` that is one of ``torch.float16`` and ``torch.bfloat16``.

    Returns:
        torch.dtype: ``torch.float16`` or ``torch.bfloat16``.

    Raises:
        ValueError: for any other value.
    """
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        resolved = _DTYPE_NAMES.get(str(dtype).lower().removeprefix("torch."))
    if resolved not in (torch.float16, torch.bfloat16):
        raise ValueError(
            f"Unsupported AMP dtype {dtype!r}; use one of {sorted(_DTYPE_NAMES)} (train.amp.dtype)."
        )
    return resolved


def build_grad_scaler(device_type: str, dtype: torch.dtype) -> torch.amp.GradScaler | None:
    """Build the gradient scaler that AMP with ``dtype`` on ``device_type`` needs.

    Args:
        device_type: ``"cuda"`` or ``"cpu"`` (the device type of the model's parameters).
        dtype: the autocast dtype from :func:`resolve_amp_dtype`.

    Returns:
        A :class:`torch.amp.GradScaler` for float16, ``None`` for bfloat16 (not needed).
    """
    if dtype != torch.float16:
        return None
    return torch.amp.GradScaler(device_type)


def module_device_type(module: torch.nn.Module) -> str:
    """Return the device type (``"cuda"``, ``"cpu"``, ...) of a module's first parameter or buffer.

    Args:
        module: any module, possibly wrapped in DistributedDataParallel.

    Returns:
        str: the device type; ``"cpu"`` for a module without tensors.
    """
    for tensor in module.parameters():
        return tensor.device.type
    for tensor in module.buffers():
        return tensor.device.type
    return "cpu"
