"""Registry of student builders, filled by the modules of ``froster.adapters``.

A student module registers its builder with :func:`register_student`; users build one by name::

    from froster import build_student, list_students
    student = build_student("vclip", clip="ViT-B-16", pretrained="openai", num_frames=8)
"""
from __future__ import annotations

import importlib
from typing import Callable, TypeVar

import torch.nn as nn

StudentBuilder = Callable[..., nn.Module]
_BuilderT = TypeVar("_BuilderT", bound=StudentBuilder)

_STUDENTS: dict[str, StudentBuilder] = {}


def register_student(name: str) -> Callable[[_BuilderT], _BuilderT]:
    """Decorator that registers a student builder (a class or a function) under ``name``."""

    def decorator(builder: _BuilderT) -> _BuilderT:
        if name in _STUDENTS and _STUDENTS[name] is not builder:
            raise ValueError(f"a student named {name!r} is already registered ({_STUDENTS[name]!r})")
        _STUDENTS[name] = builder
        return builder

    return decorator


def _load_builtin_students() -> None:
    # The built-in students live in froster.adapters; importing it runs their decorators.
    importlib.import_module("froster.adapters")


def list_students() -> list[str]:
    """Names of every registered student, sorted."""
    _load_builtin_students()
    return sorted(_STUDENTS)


def get_student_builder(name: str) -> StudentBuilder:
    """The builder registered under ``name``; a ``KeyError`` lists the known names."""
    _load_builtin_students()
    if name not in _STUDENTS:
        raise KeyError(f"unknown student {name!r}; known students: {', '.join(sorted(_STUDENTS))}")
    return _STUDENTS[name]


def build_student(name: str, **kwargs) -> nn.Module:
    """Build the student registered under ``name`` with the builder's keyword arguments."""
    return get_student_builder(name)(**kwargs)
