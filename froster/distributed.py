"""Process-group plumbing for ``torchrun`` (PyTorch DDP): NCCL on GPUs, gloo on CPUs.

``torchrun --nproc_per_node 8 -m froster train --config ...`` starts one process per GPU with
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in the environment; :func:`init_distributed` reads them.
A plain ``python -m froster train`` (no such variables) is a world of one, with no process group.

Only the trainable distiller (student + projectors) is wrapped in DDP; the frozen teacher lives
outside its parameters, so DDP neither broadcasts nor all-reduces it and every parameter it sees
receives a gradient each step (no ``find_unused_parameters``).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job.

    Attributes:
        rank: Global rank.
        world_size: Number of processes.
        local_rank: Rank on this machine (selects the GPU).
        device: The device this process computes on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0, what: str = "device") -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is available, else the CPU; other names as given.

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        local_rank: The GPU of a bare ``"cuda"``.
        what: Where the name came from, for messages (``"train.device"``, ``"--device"``).

    Raises:
        ConfigError: Not a device name, or a CUDA device on a machine without CUDA (or without
            that many GPUs).
    """
    from froster.validation import ConfigError

    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"{what}={name!r} is not a device (auto, cpu, cuda, cuda:1, ...): {error}") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what}={name!r}: CUDA is not available on this machine; use auto or cpu")
        if device.index >= torch.cuda.device_count():
            raise ConfigError(f"{what}={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), no {device}")
    return device


def init_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistInfo:
    """Join the process group ``torchrun`` set up, or describe a single process.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...; with several processes and CUDA, each
            process takes the GPU of its ``LOCAL_RANK``.
        timeout_minutes: Collective timeout (evaluation of a large set on one rank can be slow).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank, what="train.device")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if target.type == "cuda" else "gloo"
        if target.type == "cuda":
            torch.cuda.set_device(target)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    elif target.type == "cuda":
        torch.cuda.set_device(target)
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=target)


def cleanup() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum(value: float, device: Optional[torch.device] = None) -> float:
    """The sum of a number over ranks."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device or "cpu")
    dist.all_reduce(tensor)
    return float(tensor.item())


def all_ranks_true(flag: bool, device: Optional[torch.device] = None) -> bool:
    """Whether ``flag`` holds on every rank (one tiny all-reduce)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device or "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return bool(tensor.item())


def wrap_ddp(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when there are several processes, else as is."""
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (or ``model`` itself)."""
    return getattr(model, "module", model)


def autocast(device: torch.device, precision: str):
    """bf16 autocast on ``device`` when ``precision == "bf16"``, else a no-op context."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


__all__ = [
    "DistInfo",
    "autocast",
    "all_gather_objects",
    "all_ranks_true",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup",
    "init_distributed",
    "resolve_device",
    "unwrap",
    "wrap_ddp",
]
