"""DistributedDataParallel wrapping that also works for CPU (gloo) training.

detectron2's ``create_ddp_model`` always passes ``device_ids=[local_rank]``, which
``DistributedDataParallel`` rejects for a module on the CPU. Here the device ids follow the
module's device: ``[local_rank]`` on CUDA, ``None`` on CPU.
"""

from __future__ import annotations

import torch
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

from .amp import module_device_type

__all__ = ["create_ddp_model", "ddp_device_ids"]


def ddp_device_ids(model: torch.nn.Module) -> list[int] | None:
    """Return the ``device_ids`` argument DistributedDataParallel needs for ``model``.

    Args:
        model: the (unwrapped) model, already moved to its training device.

    Returns:
        ``[local_rank]`` for a CUDA module (one GPU per process), ``None`` otherwise.
    """
    if module_device_type(model) == "cuda":
        return [comm.get_local_rank()]
    return None


def create_ddp_model(
    model: torch.nn.Module, *, fp16_compression: bool = False, **kwargs
) -> torch.nn.Module:
    """Wrap ``model`` in DistributedDataParallel when more than one process is running.

    Args:
        model: the model, already on its training device.
        fp16_compression: register DDP's fp16 gradient-compression communication hook.
        **kwargs: other ``DistributedDataParallel`` arguments (``broadcast_buffers``,
            ``find_unused_parameters``, ...). ``device_ids`` defaults to
            :func:`ddp_device_ids`.

    Returns:
        The model itself in a single process, otherwise the DDP wrapper.
    """
    if comm.get_world_size() == 1:
        return model
    kwargs.setdefault("device_ids", ddp_device_ids(model))
    ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp
