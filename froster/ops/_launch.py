"""Host-side helpers shared by the Triton launches: device guard, interpreter flags, workspace."""
from __future__ import annotations

import contextlib
import os

import torch

# Ticket counters of the forward kernels' final reduction, one per (device, stream): each launch
# leaves its counter at zero again, so launches queued on one stream can share it.
_TICKETS: dict[tuple, torch.Tensor] = {}


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (read by Triton at import time)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def device_guard(device: torch.device) -> contextlib.AbstractContextManager:
    """Make ``device`` current while launching: Triton launches on the current CUDA device.

    Without it a model on ``cuda:1`` while ``cuda:0`` is current would launch on the wrong GPU.
    """
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def emulate_bf16(dtype: torch.dtype) -> bool:
    """bf16 under the interpreter: round by hand and multiply bf16 values in fp32 (see _triton_math)."""
    return dtype == torch.bfloat16 and interpreting()


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot`` input precision: full fp32 for fp32 operands (torch's default, not TF32)."""
    return "ieee" if dtype == torch.float32 or emulate_bf16(dtype) else "tf32"


def ticket_counter(device: torch.device) -> torch.Tensor:
    """The zero-initialised int32 counter of this device's current stream (allocated once)."""
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    key = (device.type, device.index, stream)
    if key not in _TICKETS:
        _TICKETS[key] = torch.zeros(1, dtype=torch.int32, device=device)
    return _TICKETS[key]
