"""Load the checkpoints people already have into a student.

Three layouts are understood (``layout="auto"`` tells them apart by their keys):

``"clip"``
    CLIP weights under OpenAI / open_clip names (``visual.conv1.weight``,
    ``transformer.resblocks.0.attn.in_proj_weight``, ``logit_scale``, ...), in any file
    :func:`froster.clip_loading.read_state_dict` reads: OpenAI's TorchScript ``.pt``, open_clip
    state dicts (``.pt``/``.bin``, optionally nested under ``state_dict``), ``.safetensors``.

``"froster"``
    Checkpoints of the released FROSTER and Open-VCLIP code (``{"model_state": {...}, ...}``,
    or the bare state dict). The student's CLIP is under ``model.`` with OpenAI names; FROSTER
    adds its two residual projectors, ``nn.Sequential(Linear, GELU, Linear)`` without biases::

        model.<clip key>          -> student (through the student's clip_state_dict_key hook)
        projector_v.0.weight      -> report.projector_state["video_projector.fc1.weight"]
        projector_v.2.weight      -> report.projector_state["video_projector.fc2.weight"]
        projector_t.0.weight      -> report.projector_state["text_projector.fc1.weight"]
        projector_t.2.weight      -> report.projector_state["text_projector.fc2.weight"]
        raw_model.*               -> ignored (the frozen teacher; reload it from its source)

    ``distiller.load_state_dict(report.projector_state, strict=False)`` restores the projectors.

``"vificlip"``
    ViFi-CLIP checkpoints (``{"model": {...}, ...}``, keys optionally under ``model.``)::

        image_encoder.<k>                -> visual.<k>
        text_encoder.transformer.<k>     -> transformer.<k>
        text_encoder.positional_embedding, text_encoder.ln_final.<k>, text_encoder.text_projection
                                         -> the same names without text_encoder.
        logit_scale                      -> logit_scale
        prompt_learner.token_prefix / token_suffix / tokenized prompts -> ignored

    ViFi-CLIP keeps no ``token_embedding``: it embeds its fixed prompts once with the frozen
    CLIP token embedding. The student's own ``token_embedding.weight`` is therefore kept (and
    listed in ``report.kept``), which is faithful when the student was built from the CLIP
    weights ViFi-CLIP started from (``pretrained="openai"`` for the released models). Learned
    prompt vectors (``prompt_learner.ctx``) have no place in a student and are unexpected.

Students map CLIP names to their own through two optional methods, which
:class:`~froster.adapters._clip_video.ClipVideoStudent` implements: ``clip_state_dict_key(key)``
(the student key holding CLIP's ``key``, or ``None``) and ``non_clip_state_keys()`` (keys of
modules the student adds, which a CLIP checkpoint cannot set). A student without them is
loaded with CLIP's names as they are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Union

import torch
import torch.nn as nn

from froster.clip_loading import OPENAI_NON_WEIGHT_KEYS, describe_key_mismatch, read_state_dict

__all__ = ["CheckpointReport", "LAYOUTS", "detect_layout", "load_student_checkpoint"]

LAYOUTS = ("clip", "froster", "vificlip")
_PROJECTORS = {"projector_v.": "video_projector.", "projector_t.": "text_projector."}
_PROJECTOR_LAYERS = {"0": "fc1", "2": "fc2"}
_VIFICLIP_TEXT_KEYS = ("transformer.", "positional_embedding", "ln_final.", "text_projection")


@dataclass
class CheckpointReport:
    """What :func:`load_student_checkpoint` did.

    Attributes:
        layout: The layout read (one of :data:`LAYOUTS`).
        missing: Student keys the checkpoint did not set (empty when strict).
        unexpected: Checkpoint keys with no place in the student (empty when strict).
        ignored: Checkpoint keys dropped on purpose (teacher copies, fixed prompt embeddings).
        kept: Student keys the layout never carries, left as they were.
        projector_state: FROSTER's projector weights under :class:`froster.ResidualDistiller` names.
    """

    layout: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    projector_state: dict[str, torch.Tensor] = field(default_factory=dict)


def detect_layout(state: Mapping[str, torch.Tensor]) -> str:
    """Tell :data:`LAYOUTS` apart by key names; a ``ValueError`` shows a few keys otherwise."""
    keys = list(state)
    if any(k.startswith(("image_encoder.", "model.image_encoder.")) for k in keys):
        return "vificlip"
    if any(k.startswith(("model.visual.", "projector_v.", "projector_t.")) for k in keys):
        return "froster"
    if any(k.startswith("visual.") for k in keys):
        return "clip"
    raise ValueError(f"cannot tell the checkpoint layout from its keys (e.g. {keys[:6]}); pass layout= one of {LAYOUTS}")


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def _convert(state: Mapping[str, torch.Tensor], layout: str, report: CheckpointReport) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Checkpoint keys -> CLIP keys. Returns the CLIP state and the CLIP keys the layout never carries."""
    clip_state: dict[str, torch.Tensor] = {}
    if layout == "clip":
        return dict(state), set()  # read_state_dict already dropped OpenAI's non-weight entries
    if layout == "froster":
        for key, value in state.items():
            projector = next((p for p in _PROJECTORS if key.startswith(p)), None)
            if projector is not None:
                index, _, rest = key[len(projector):].partition(".")
                layer = _PROJECTOR_LAYERS.get(index)
                if layer is None:
                    report.unexpected.append(key)
                else:
                    report.projector_state[f"{_PROJECTORS[projector]}{layer}.{rest}"] = value
            elif key.startswith("raw_model."):
                report.ignored.append(key)
            elif key.startswith("model.") and _strip(key, "model.") not in OPENAI_NON_WEIGHT_KEYS:
                clip_state[_strip(key, "model.")] = value
            elif key.startswith("model."):
                report.ignored.append(key)
            else:
                clip_state[key] = value  # heads / prompts of other training modes: unexpected later
        return clip_state, set()
    if layout == "vificlip":
        for key, value in state.items():
            name = _strip(key, "model.")
            if name.startswith("image_encoder."):
                clip_state["visual." + name[len("image_encoder."):]] = value
            elif name.startswith("text_encoder.") and name[len("text_encoder."):].startswith(_VIFICLIP_TEXT_KEYS):
                clip_state[name[len("text_encoder."):]] = value
            elif name == "logit_scale":
                clip_state[name] = value
            elif name.startswith("prompt_learner.") and not name.startswith("prompt_learner.ctx"):
                report.ignored.append(key)
            else:
                clip_state[key] = value  # learned prompts or foreign modules: unexpected later
        return clip_state, {"token_embedding.weight"}
    raise ValueError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}")


def load_student_checkpoint(
    student: nn.Module,
    path: Union[str, os.PathLike],
    layout: str = "auto",
    strict: bool = True,
    weights_only: bool = True,
) -> CheckpointReport:
    """Load a CLIP, FROSTER / Open-VCLIP or ViFi-CLIP checkpoint into ``student``.

    Args:
        student: A student module (any, see the module docstring for the key hooks).
        path: The checkpoint file.
        layout: ``"auto"`` or one of :data:`LAYOUTS`.
        strict: Refuse checkpoints that leave student weights unset or carry weights the student
            has no place for. Shape mismatches are always refused.
        weights_only: See :func:`froster.clip_loading.read_state_dict`.

    Returns:
        A :class:`CheckpointReport`; its ``projector_state`` holds FROSTER's projectors.

    Raises:
        ValueError: naming the differing keys and shapes, before anything is loaded.
    """
    state = read_state_dict(path, weights_only=weights_only)
    report = CheckpointReport(layout=detect_layout(state) if layout == "auto" else layout)
    clip_state, never_carried = _convert(state, report.layout, report)

    to_student = getattr(student, "clip_state_dict_key", lambda key: key)
    own = student.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for key, value in clip_state.items():
        target = to_student(key)
        if target is None:
            report.ignored.append(key)
        else:
            converted[target] = value
    new_keys = set(getattr(student, "non_clip_state_keys", lambda: [])())
    report.kept = sorted({to_student(k) for k in never_carried} & set(own) - set(converted))
    report.missing = sorted(set(own) - set(converted) - new_keys - set(report.kept))
    report.unexpected = sorted(set(report.unexpected) | (set(converted) - set(own)))
    shape_errors = [
        f"{k} {tuple(v.shape)} vs student {tuple(own[k].shape)}" for k, v in converted.items() if k in own and v.shape != own[k].shape
    ]
    if shape_errors or (strict and (report.missing or report.unexpected)):
        raise ValueError(
            f"{report.layout} checkpoint {os.fspath(path)!r} does not match {type(student).__name__}: "
            f"{describe_key_mismatch(report.missing, report.unexpected, shape_errors)}"
        )
    student.load_state_dict({k: v for k, v in converted.items() if k in own}, strict=False)
    return report
