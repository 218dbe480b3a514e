"""Registry of student builders, filled by the modules of ``froster.adapters``.

A student module registers its builder with :func:`register_student`; users build one by name::

    from froster import build_student, list_students
    student = build_student("vclip", clip="ViT-B-16", pretrained="openai", num_frames=8)

and from a released checkpoint in one call (FROSTER / Open-VCLIP, ViFi-CLIP, X-CLIP or CLIP files;
see :mod:`froster.adapters.checkpoints`)::

    student = build_student("vclip", clip="ViT-B-16", pretrained="openai", checkpoint="froster_b16.pyth")
    distiller.load_projectors(student.checkpoint_report)   # FROSTER's residual projectors
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Optional, TypeVar, Union

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


def build_student(
    name: str,
    *,
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    layout: str = "auto",
    patch_ratio: Optional[float] = None,
    strict: bool = True,
    weights_only: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """Build the student registered under ``name``, optionally from a released checkpoint.

    Args:
        name: A registered student (:func:`list_students`).
        checkpoint: A checkpoint to load after building, in any layout of
            :func:`froster.adapters.checkpoints.load_student_checkpoint`. Its layout decides the
            MLP activation (every released layout is QuickGELU), unless ``activation=`` says
            otherwise; X-CLIP files also give ``num_frames`` when it is not passed. The returned
            student carries what was loaded as ``student.checkpoint_report`` (FROSTER's
            projectors in its ``projector_state``; see :meth:`froster.ResidualDistiller.load_projectors`),
            and takes the frame normalisation of the layout's model (``pixel_mean``/``pixel_std``).
        layout: ``"auto"`` or the checkpoint's layout.
        patch_ratio: Weight patching at load against the CLIP the student is built from
            (``pretrained=`` must be real): Open-VCLIP's released B/16 file is evaluated with 0.5.
        strict: Refuse checkpoints with missing or unexpected keys.
        weights_only: Passed to ``torch.load`` (see the trust model in ``docs/api.md``).
        **kwargs: The builder's keyword arguments (``clip``, ``pretrained``, ``num_frames``, ...).
            ``trust_code=True`` lets TorchScript files (``pretrained`` and ``checkpoint``) run the
            code they carry; only for files you trust (``docs/api.md``).
    """
    builder = get_student_builder(name)
    if checkpoint is None:
        if patch_ratio is not None:
            raise ValueError("patch_ratio patches a checkpoint at load; pass checkpoint= as well")
        return builder(**kwargs)
    from froster.adapters.checkpoints import LAYOUT_ACTIVATION, detect_layout, load_student_state, read_checkpoint
    from froster.clip_activation import weights_activation

    source = os.fspath(checkpoint)
    state = read_checkpoint(checkpoint, weights_only=weights_only, trust_code=bool(kwargs.get("trust_code", False)))
    found = detect_layout(state) if layout == "auto" else layout
    trained = LAYOUT_ACTIVATION.get(found) or weights_activation(None, source)
    if trained is not None and kwargs.get("activation", "auto") == "auto" and "quick_gelu" not in kwargs:
        kwargs["activation"] = trained
    if found == "xclip" and "num_frames" not in kwargs:
        frames = state.get("mit.positional_embedding", state.get("model.mit.positional_embedding"))
        if frames is not None:
            kwargs["num_frames"] = int(frames.shape[-2])
    student = builder(**kwargs)
    report = load_student_state(
        student, state, source, found, strict, patch_ratio=patch_ratio,
        allow_activation_mismatch=bool(kwargs.get("allow_activation_mismatch", False)),
    )
    if hasattr(student, "pixel_mean"):
        student.pixel_mean, student.pixel_std = report.pixel_mean, report.pixel_std
    student.checkpoint_report = report
    return student
