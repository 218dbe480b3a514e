"""Tiny students for the student tests.

Every registered student is built with ``froster.testing.tiny_student_kwargs(num_frames)``. A
student that needs other tiny arguments sets ``tiny_kwargs`` on its builder (a class attribute,
or an attribute of the builder function): either a dict merged over those defaults, or a
callable ``tiny_kwargs(num_frames) -> dict`` that replaces them.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
import torch.nn as nn

from froster.registry import build_student, get_student_builder
from froster.testing import tiny_student_kwargs

NUM_FRAMES = 4


def tiny_build_kwargs(name: str, num_frames: int = NUM_FRAMES, **options: Any) -> dict[str, Any]:
    """Keyword arguments that build a tiny random ``name`` student, ``options`` on top."""
    extra = getattr(get_student_builder(name), "tiny_kwargs", None)
    if callable(extra):
        kwargs = dict(extra(num_frames))
    else:
        kwargs = tiny_student_kwargs(num_frames)
        kwargs.update(extra or {})
    kwargs.update(options)
    return kwargs


def build_tiny(name: str, num_frames: int = NUM_FRAMES, seed: int = 0, **options: Any) -> nn.Module:
    """A tiny random ``name`` student, its weights fixed by ``seed``."""
    torch.manual_seed(seed)
    return build_student(name, **tiny_build_kwargs(name, num_frames, **options))


@pytest.fixture
def tiny_student() -> Callable[..., nn.Module]:
    """``tiny_student(name, num_frames=4, seed=0, **options)`` -> a tiny student."""
    return build_tiny
