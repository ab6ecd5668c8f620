"""CPU DistributedDataParallel: device_ids must be None (detectron2 passes [rank])."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from detrdistill.engine import create_ddp_model, ddp_device_ids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_single_process_returns_the_model():
    model = nn.Linear(2, 2)
    assert create_ddp_model(model, broadcast_buffers=False) is model


def test_cpu_device_ids_are_none_and_ddp_accepts_them():
    model = nn.Linear(2, 2)
    assert ddp_device_ids(model) is None
    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        with pytest.raises(ValueError):  # what detectron2's create_ddp_model does on CPU
            DistributedDataParallel(model, device_ids=[0])
        ddp = DistributedDataParallel(model, device_ids=ddp_device_ids(model))
        ddp(torch.ones(3, 2)).sum().backward()
        assert model.weight.grad is not None
    finally:
        dist.destroy_process_group()
