"""Where a stage runs: the device params.yaml asks for, and the process group under torchrun."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .errors import ParamError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamError("params.yaml: train.device is cuda, but this machine has no CUDA device; "
                         "set it to auto or cpu")
    return torch.device(name)


def distributed_setup(device: torch.device, batch_size: int, batch_key: str):
    """(rank, world_size, device) under torchrun; (0, 1, device) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    if batch_size % world:
        raise ParamError(f"params.yaml: {batch_key} must divide evenly over {world} processes, got {batch_size!r}")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device
