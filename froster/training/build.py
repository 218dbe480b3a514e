"""Build the student, the teacher and the distiller from their configs, and load trained weights."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Mapping, Optional, Union

import torch
import torch.nn as nn

from froster.clip_loading import create_open_clip, load_state_dict_checked
from froster.distiller import ResidualDistiller
from froster.registry import build_student as _registry_build_student
from froster.registry import list_students
from froster.training.configs import ConfigError, RunConfig, StudentConfig, TeacherConfig

if TYPE_CHECKING:
    from froster.clip_activation import Activation

PathLike = Union[str, os.PathLike]
STUDENT_PREFIX = "student."
_WEIGHT_SUFFIXES = (".pt", ".pth", ".pyth", ".bin", ".safetensors")


def build_student(config: StudentConfig, num_frames: int, *, pretrained: bool = True, seed: Optional[int] = None) -> nn.Module:
    """The registered student ``config.name``.

    Args:
        config: Which student and which CLIP it starts from.
        num_frames: T, from the data config.
        pretrained: Load ``config.pretrained``; ``False`` when trained weights are loaded next
            anyway (evaluation, prediction), which saves a download and the load.
        seed: Seeds torch before building, so randomly initialised weights (tests, tiny runs)
            are the same in every process and can be rebuilt for weight patching.

    Raises:
        ConfigError: ``config.name`` is not a registered student.
    """
    if config.name not in list_students():
        raise ConfigError(f"student.name: unknown student {config.name!r}; known students: {', '.join(list_students())}")
    if seed is not None:
        torch.manual_seed(seed)
    return _registry_build_student(
        config.name,
        clip=config.clip,
        pretrained=config.pretrained if pretrained else None,
        num_frames=num_frames,
        # Without the weights, the activation they were trained with must still be built.
        activation=config.activation if pretrained else config_activation(config),
        trust_code=config.trust_code,
        **config.options,
        **config.clip_overrides,
    )


def build_teacher(config: TeacherConfig, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """The frozen open_clip teacher."""
    from froster.teachers import OpenCLIPTeacher

    return OpenCLIPTeacher.from_pretrained(
        config.clip, config.pretrained, precision=config.precision, device=device, activation=config.activation,
        trust_code=config.trust_code, **config.clip_overrides,
    )


def config_activation(config: Union[StudentConfig, TeacherConfig]) -> Activation:
    """The activation a student or teacher config builds: its own, or what its weights were trained with.

    Raises:
        ConfigError: ``activation="auto"`` with a ``pretrained`` file that is not here, so the
            weights cannot say.
    """
    from froster.clip_activation import AUTO, resolve_activation

    if config.activation != AUTO:
        return config.activation
    pretrained = config.pretrained
    looks_like_file = pretrained is not None and (os.sep in pretrained or os.path.splitext(pretrained)[1] in _WEIGHT_SUFFIXES)
    if pretrained is not None and looks_like_file and not os.path.isfile(pretrained):
        raise ConfigError(
            f"activation='auto' follows the weights, but pretrained={pretrained!r} is not here to say which "
            "activation they were trained with; set activation='quick_gelu' (OpenAI-derived weights) or 'gelu'"
        )
    return resolve_activation(config.clip, pretrained, AUTO)


def with_resolved_activations(config: RunConfig) -> RunConfig:
    """``config`` with ``activation="auto"`` of the student and the teacher replaced by what it builds.

    Runs store this config with their weights, so that rebuilding the student for evaluation,
    without its ``pretrained`` weights, builds the activation it was trained with.
    """
    import dataclasses

    return dataclasses.replace(
        config,
        student=dataclasses.replace(config.student, activation=config_activation(config.student)),
        teacher=dataclasses.replace(config.teacher, activation=config_activation(config.teacher)),
    )


def build_distiller(config: RunConfig, device: Union[str, torch.device] = "cpu") -> ResidualDistiller:
    """Student + teacher + projectors, on ``device``.

    Student and teacher are both built right after seeding torch with ``train.seed``: random
    weights (``pretrained=None``, tests and the tiny recipe) are then the same in every process,
    and a random teacher with the student's CLIP config is exactly the CLIP the student starts
    from, as FROSTER's frozen teacher is.
    """
    student = build_student(config.student, config.data.num_frames, seed=config.train.seed)
    torch.manual_seed(config.train.seed)
    teacher = build_teacher(config.teacher, device="cpu")
    return ResidualDistiller(student, teacher, config.distill).to(device)


def original_clip_state(config: RunConfig) -> dict[str, torch.Tensor]:
    """The CLIP weights the student started from (CLIP keys), for weight patching.

    Random CLIPs (``pretrained=None``) are rebuilt with the run's seed, as :func:`build_student`
    built them.
    """
    torch.manual_seed(config.train.seed)
    model, _ = create_open_clip(
        config.student.clip, config.student.pretrained, activation=config.student.activation,
        trust_code=config.student.trust_code, **config.student.clip_overrides,
    )
    return {k: v.detach() for k, v in model.state_dict().items()}


def set_grad_checkpointing(student: nn.Module, enable: bool = True) -> int:
    """Turn activation checkpointing on in ``student``; returns the number of places switched.

    A student's own ``set_grad_checkpointing(enable)`` is used when it has one; otherwise every
    submodule with a boolean ``grad_checkpointing`` attribute (open_clip's transformers, timm's
    models) is switched.

    Raises:
        ValueError: The student offers neither.
    """
    method = getattr(student, "set_grad_checkpointing", None)
    if callable(method):
        method(enable)
        return 1
    switched = 0
    for module in student.modules():
        if isinstance(getattr(module, "grad_checkpointing", None), bool):
            # torch's stub types Module.__setattr__ values as Tensor | Module; this is a plain bool flag.
            module.grad_checkpointing = enable  # type: ignore[assignment]
            switched += 1
    if not switched:
        raise ValueError(
            f"{type(student).__name__} supports no gradient checkpointing: give it a "
            "set_grad_checkpointing(enable) method or open_clip-style grad_checkpointing flags"
        )
    return switched


def split_student_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The student's entries of a distiller state dict (prefix removed); a bare student state as is."""
    if any(k.startswith(STUDENT_PREFIX) for k in state):
        return {k[len(STUDENT_PREFIX):]: v for k, v in state.items() if k.startswith(STUDENT_PREFIX)}
    return dict(state)


def config_from_weights_metadata(metadata: Mapping[str, str]) -> Optional[RunConfig]:
    """The run config a froster weights file carries in its safetensors metadata, if any."""
    text = metadata.get("froster_config")
    return RunConfig.from_dict(json.loads(text)) if text else None


def stored_run_config(path: PathLike) -> Optional[RunConfig]:
    """The run config stored with trained weights (file metadata or ``config.json``), read cheaply."""
    from froster.training.checkpoint import resolve_checkpoint

    if os.path.isfile(path):
        from safetensors import safe_open

        with safe_open(os.fspath(path), framework="pt") as handle:
            return config_from_weights_metadata(handle.metadata() or {})
    return RunConfig.from_json((resolve_checkpoint(path) / "config.json").read_text())


def load_trained_student(path: PathLike, config: Optional[RunConfig] = None) -> tuple[nn.Module, RunConfig]:
    """A student with trained weights from a ``.safetensors`` file or a checkpoint directory.

    Args:
        path: ``avg.safetensors`` / ``final.safetensors`` / ``patched.safetensors`` of a run, a
            checkpoint directory, a run's output dir, or a bare student state dict in safetensors.
        config: The run config whose ``student`` section describes the architecture; the one
            stored with the weights when None.

    Returns:
        ``(student, config)``; the student is in eval mode on the CPU, built without
        downloading CLIP since every weight comes from ``path``.
    """
    from froster.training.checkpoint import load_weights, resolve_checkpoint

    config = config or stored_run_config(path)
    if config is None:
        raise ValueError(f"{path} carries no run config; pass one (froster eval --config <recipe> ...)")
    weights = path if os.path.isfile(path) else resolve_checkpoint(path) / "model.safetensors"
    state, _ = load_weights(weights)
    student = build_student(config.student, config.data.num_frames, pretrained=False, seed=config.train.seed)
    load_state_dict_checked(student, split_student_state(state), source=os.fspath(path))
    return student.eval(), config


__all__ = [
    "build_distiller",
    "build_student",
    "build_teacher",
    "config_activation",
    "config_from_weights_metadata",
    "load_trained_student",
    "original_clip_state",
    "set_grad_checkpointing",
    "split_student_state",
    "stored_run_config",
    "with_resolved_activations",
]
