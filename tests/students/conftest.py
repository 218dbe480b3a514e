"""Tiny students for the student tests.

Every registered student is built with ``froster.testing.tiny_build_kwargs(name, num_frames)``,
which honours a ``tiny_kwargs`` attribute on the student's builder.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
import torch.nn as nn

from froster.registry import build_student
from froster.testing import tiny_build_kwargs

NUM_FRAMES = 4


def build_tiny(name: str, num_frames: int = NUM_FRAMES, seed: int = 0, **options: Any) -> nn.Module:
    """A tiny random ``name`` student, its weights fixed by ``seed``."""
    torch.manual_seed(seed)
    return build_student(name, **tiny_build_kwargs(name, num_frames, **options))


@pytest.fixture
def tiny_student() -> Callable[..., nn.Module]:
    """``tiny_student(name, num_frames=4, seed=0, **options)`` -> a tiny student."""
    return build_tiny
