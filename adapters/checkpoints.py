"""Load the checkpoints people already have into a student.

Four layouts are understood (``layout="auto"`` tells them apart by their keys). Every released
layout (FROSTER / Open-VCLIP, ViFi-CLIP, X-CLIP) was fine-tuned from OpenAI's CLIP and computes
QuickGELU: loading one into a student built with exact GELU is refused (see
:mod:`froster.clip_activation`); :func:`froster.build_student` with ``checkpoint=`` builds the
right one.

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

    ``distiller.load_projectors(report)`` restores the projectors.

``"vificlip"``
    ViFi-CLIP checkpoints (``{"model": {...}, "optimizer": ..., "config": <yacs>, ...}``), keys
    under ``module.``::

        module.image_encoder.<k>                -> visual.<k>
        module.text_encoder.transformer.<k>     -> transformer.<k>
        module.text_encoder.positional_embedding, .ln_final.<k>, .text_projection
                                                -> the same names without text_encoder.
        module.logit_scale                      -> logit_scale
        module.prompt_learner.complete_text_embeddings -> checked, then ignored

    ViFi-CLIP keeps no ``token_embedding``: it embeds its fixed prompts ("a photo of a {}.") once
    with the frozen CLIP token embedding and stores the result as
    ``prompt_learner.complete_text_embeddings`` (K, L, W). The student's own token embedding is
    therefore kept (``report.kept``), and it must be the CLIP one ViFi-CLIP started from: every
    stored prompt position must be a row of the student's embedding table, or the file is
    refused with the fix (build the student with ``pretrained="openai"``). Learned prompt
    vectors (``prompt_learner.ctx``) have no place in a student and are unexpected. ViFi-CLIP
    normalised frames with ImageNet's mean and std (``report.pixel_mean``/``pixel_std``).

``"xclip"``
    X-CLIP checkpoints (``{"model": {...}, ...}``): CLIP's keys plus X-CLIP's message tokens,
    integration transformer and prompt generator, renamed by
    :mod:`froster.adapters.xclip_checkpoint`; only the ``xclip`` student has a place for them.
    X-CLIP normalised frames with ImageNet's mean and std.

The files of ViFi-CLIP and X-CLIP pickle a yacs config beside the weights. It is read as inert
data (a dict standing in for ``yacs.config.CfgNode``) under ``weights_only=True``; nothing in the
file runs. ``weights_only=False`` is only needed for files that pickle other objects.

Students map CLIP names to their own through two optional methods, which
:class:`~froster.adapters._clip_video.ClipVideoStudent` implements: ``clip_state_dict_key(key)``
(the student key holding CLIP's ``key``, or ``None``) and ``non_clip_state_keys()`` (keys of
modules the student adds, which a CLIP checkpoint cannot set). A student without them is
loaded with CLIP's names as they are.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Optional, Union

import torch
import torch.nn as nn

from froster.clip_activation import QUICK_GELU, check_loaded_activation, weights_activation
from froster.clip_loading import OPENAI_NON_WEIGHT_KEYS, describe_key_mismatch, read_state_dict
from froster.weights_safety import check_dtypes

__all__ = [
    "CLIP_PIXEL_MEAN",
    "CLIP_PIXEL_STD",
    "CheckpointReport",
    "IMAGENET_PIXEL_MEAN",
    "IMAGENET_PIXEL_STD",
    "LAYOUTS",
    "LAYOUT_ACTIVATION",
    "detect_layout",
    "load_student_checkpoint",
    "read_checkpoint",
]

LAYOUTS = ("clip", "froster", "vificlip", "xclip")
# The activation of every released layout: all start from OpenAI's CLIP. CLIP files say it
# themselves (OpenAI's archives) or not at all.
LAYOUT_ACTIVATION = {"froster": QUICK_GELU, "vificlip": QUICK_GELU, "xclip": QUICK_GELU}
CLIP_PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_PIXEL_MEAN = (0.485, 0.456, 0.406)
IMAGENET_PIXEL_STD = (0.229, 0.224, 0.225)
# The frame normalisation each layout's model was trained with (ViFi-CLIP and X-CLIP use the
# mmaction pipeline's ImageNet statistics; FROSTER and Open-VCLIP use CLIP's).
_LAYOUT_PIXEL_STATS = {
    "clip": (CLIP_PIXEL_MEAN, CLIP_PIXEL_STD),
    "froster": (CLIP_PIXEL_MEAN, CLIP_PIXEL_STD),
    "vificlip": (IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD),
    "xclip": (IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD),
}
_PROJECTORS = {"projector_v.": "video_projector.", "projector_t.": "text_projector."}
_PROJECTOR_LAYERS = {"0": "fc1", "2": "fc2"}
_VIFICLIP_TEXT_KEYS = ("transformer.", "positional_embedding", "ln_final.", "text_projection")
_VIFICLIP_PROMPTS = "prompt_learner.complete_text_embeddings"
_XCLIP_KEYS = ("prompts_generator.", "mit.", "prompts_visual_proj")


@dataclass
class CheckpointReport:
    """What :func:`load_student_checkpoint` did.

    Attributes:
        layout: The layout read (one of :data:`LAYOUTS`).
        source: The file read.
        missing: Student keys the checkpoint did not set (empty when strict).
        unexpected: Checkpoint keys with no place in the student (empty when strict).
        ignored: Checkpoint keys dropped on purpose (teacher copies, fixed prompt embeddings).
        kept: Student keys the layout never carries, left as they were.
        patched: Student keys interpolated with the student's previous (original CLIP) weights.
        projector_state: FROSTER's projector weights under :class:`froster.ResidualDistiller` names.
        pixel_mean: Per-channel mean the layout's model normalised its frames with.
        pixel_std: Per-channel standard deviation of that normalisation.
    """

    layout: str
    source: str = ""
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    projector_state: dict[str, torch.Tensor] = field(default_factory=dict)
    pixel_mean: tuple[float, float, float] = CLIP_PIXEL_MEAN
    pixel_std: tuple[float, float, float] = CLIP_PIXEL_STD


class _InertConfig:
    """Stands in for ``yacs.config.CfgNode`` when a checkpoint is unpickled: becomes a plain OrderedDict.

    torch's ``weights_only`` unpickler fills only (ordered) dicts, and sets the attributes a
    pickled dict subclass carries on an ``OrderedDict``'s ``__dict__``; no method of yacs runs.
    """

    def __new__(cls, *args: object) -> "OrderedDict[str, object]":  # type: ignore[misc]
        return OrderedDict()


@contextmanager
def _inert_configs() -> Iterator[None]:
    # torch's weights_only unpickler accepts an allow-listed stand-in under another class's name.
    with torch.serialization.safe_globals([(_InertConfig, "yacs.config.CfgNode")]):
        yield


def read_checkpoint(path: Union[str, os.PathLike], *, weights_only: bool = True, trust_code: bool = False) -> dict[str, torch.Tensor]:
    """The flat state dict of a checkpoint in any supported layout (``module.`` removed).

    The yacs configs that ViFi-CLIP and X-CLIP pickle beside their weights are read as inert data
    under ``weights_only=True``. ``weights_only`` and ``trust_code``: see
    :func:`froster.clip_loading.read_state_dict`.
    """
    with _inert_configs():
        return read_state_dict(path, weights_only=weights_only, trust_code=trust_code)


def detect_layout(state: Mapping[str, torch.Tensor]) -> str:
    """Tell :data:`LAYOUTS` apart by key names; a ``ValueError`` shows a few keys otherwise."""
    keys = list(state)
    if any(k.startswith(("image_encoder.", "model.image_encoder.")) for k in keys):
        return "vificlip"
    if any(k.startswith(("model.visual.", "projector_v.", "projector_t.")) for k in keys):
        return "froster"
    if any(k.startswith(_XCLIP_KEYS) or "message_" in k for k in keys):
        return "xclip"
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


def _to_student_keys(student: nn.Module, state: Mapping[str, torch.Tensor], layout: str, report: CheckpointReport):
    """Checkpoint state -> (student-keyed state, student keys the layout never carries)."""
    if layout == "xclip":
        from froster.adapters.xclip_checkpoint import from_xclip_keys

        return from_xclip_keys(state), set()
    clip_state, never_carried = _convert(state, layout, report)
    to_student = getattr(student, "clip_state_dict_key", lambda key: key)
    converted: dict[str, torch.Tensor] = {}
    for key, value in clip_state.items():
        target = to_student(key)
        if target is None:
            report.ignored.append(key)
        else:
            converted[target] = value
    return converted, {to_student(k) for k in never_carried}


def load_student_checkpoint(
    student: nn.Module,
    path: Union[str, os.PathLike],
    layout: str = "auto",
    strict: bool = True,
    weights_only: bool = True,
    *,
    patch_ratio: Optional[float] = None,
    allow_activation_mismatch: bool = False,
    trust_code: bool = False,
) -> CheckpointReport:
    """Load a CLIP, FROSTER / Open-VCLIP, ViFi-CLIP or X-CLIP checkpoint into ``student``.

    Args:
        student: A student module (any, see the module docstring for the key hooks).
        path: The checkpoint file.
        layout: ``"auto"`` or one of :data:`LAYOUTS`.
        strict: Refuse checkpoints that leave student weights unset or carry weights the student
            has no place for. Shape mismatches are always refused.
        weights_only: See :func:`froster.clip_loading.read_state_dict`.
        patch_ratio: Open-VCLIP-style weight patching at load:
            ``(1 - patch_ratio) * file + patch_ratio * original`` for every weight the file shares
            with CLIP, where ``original`` is the student's weight before loading (the CLIP it was
            built from, which must be real: ``pretrained=...``). Open-VCLIP's released B/16 file
            is evaluated with 0.5, its L/14 file with 0.6; ``None`` loads the file as it is.
        allow_activation_mismatch: Load weights trained with QuickGELU into a student built with
            GELU (or the reverse) anyway.
        trust_code: Let a TorchScript ``path`` run the code it carries (``torch.jit.load``); only
            for files you trust. See :func:`froster.clip_loading.read_state_dict`.

    Returns:
        A :class:`CheckpointReport`; its ``projector_state`` holds FROSTER's projectors.

    Raises:
        ValueError: naming the differing keys and shapes, before anything is loaded.
        froster.clip_activation.ActivationMismatchError: the file's activation is not the student's.
    """
    source = os.fspath(path)
    state = read_checkpoint(path, weights_only=weights_only, trust_code=trust_code)
    return load_student_state(
        student, state, source, layout, strict, patch_ratio=patch_ratio, allow_activation_mismatch=allow_activation_mismatch
    )


def load_student_state(
    student: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    layout: str = "auto",
    strict: bool = True,
    *,
    patch_ratio: Optional[float] = None,
    allow_activation_mismatch: bool = False,
) -> CheckpointReport:
    """:func:`load_student_checkpoint` for a state dict already read from ``source``."""
    report = CheckpointReport(layout=detect_layout(state) if layout == "auto" else layout, source=source)
    if report.layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}")
    report.pixel_mean, report.pixel_std = _LAYOUT_PIXEL_STATS[report.layout]
    trained = LAYOUT_ACTIVATION.get(report.layout) or weights_activation(None, source if os.path.isfile(source) else None)
    check_loaded_activation(student, trained, f"{report.layout} checkpoint {source!r}", allow_mismatch=allow_activation_mismatch)

    converted, never_carried = _to_student_keys(student, state, report.layout, report)
    own = student.state_dict()
    # TorchScript archives also carry non-persistent buffers (CLIP's `attn_mask`): rebuilt by the model.
    non_persistent = {name for name, _ in student.named_buffers()} - set(own)
    converted = {k: v for k, v in converted.items() if k not in non_persistent}
    new_keys = set(getattr(student, "non_clip_state_keys", lambda: [])()) if report.layout != "xclip" else set()
    report.kept = sorted(never_carried & set(own) - set(converted))
    report.missing = sorted(set(own) - set(converted) - new_keys - set(report.kept))
    report.unexpected = sorted(set(report.unexpected) | (set(converted) - set(own)))
    shape_errors = [
        f"{k} {tuple(v.shape)} vs student {tuple(own[k].shape)}" for k, v in converted.items() if k in own and v.shape != own[k].shape
    ]
    if shape_errors or (strict and (report.missing or report.unexpected)):
        raise ValueError(
            f"{report.layout} checkpoint {source!r} does not match {type(student).__name__}: "
            f"{describe_key_mismatch(report.missing, report.unexpected, shape_errors)}"
        )
    if report.layout == "vificlip":
        _check_prompt_embeddings(student, state, source)
    loadable = {k: v for k, v in converted.items() if k in own}
    check_dtypes(own, loadable, f"{report.layout} checkpoint {source!r}")
    if patch_ratio is not None:
        loadable, report.patched = _patch(student, loadable, own, patch_ratio)
    student.load_state_dict(loadable, strict=False)
    return report


def _patch(student: nn.Module, loadable: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor], ratio: float):
    from froster.training.averaging import patch_weights

    if getattr(student, "clip_weights", None) is None:
        raise ValueError(
            "patch_ratio interpolates the file with the CLIP the student was built from, but this student was "
            "built with random weights; build it with pretrained='openai' (or a CLIP weights file)"
        )
    clip_keys = getattr(student, "clip_state_keys", None)
    to_student = getattr(student, "clip_state_dict_key", lambda key: key)
    shared = set(loadable) if clip_keys is None else {to_student(k) for k in clip_keys} & set(loadable)
    original = {k: own[k] for k in shared}
    return patch_weights(loadable, original, ratio)


def _check_prompt_embeddings(student: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse a ViFi-CLIP file for a student whose token embedding is not the one ViFi-CLIP used.

    ViFi-CLIP stores its prompts already embedded with CLIP's frozen token table, (K, L, W): each
    position of the first prompt must be a row of the student's table.
    """
    stored = next((v for k, v in state.items() if k.endswith(_VIFICLIP_PROMPTS)), None)
    to_student = getattr(student, "clip_state_dict_key", lambda key: key)
    table = student.state_dict().get(to_student("token_embedding.weight"))
    if stored is None or table is None or stored.dim() != 3:
        return
    rows = stored[0].float()  # (L, W)
    if rows.shape[-1] != table.shape[-1]:
        raise ValueError(f"{source}: {_VIFICLIP_PROMPTS} has width {rows.shape[-1]}, the student's token embedding {table.shape[-1]}")
    table = table.float()  # (V, W)
    nearest = torch.cdist(rows, table).min(dim=1).values  # (L,)
    tolerance = 1e-2 * table.norm(dim=1).mean()
    if bool((nearest > tolerance).any()):
        raise ValueError(
            f"{source} is a ViFi-CLIP file, which carries no token embedding: the student's own is used, and it is "
            f"not the CLIP one ViFi-CLIP embedded its prompts with ({int((nearest > tolerance).sum())} of "
            f"{rows.shape[0]} stored prompt positions are no row of it). Build the student from the CLIP ViFi-CLIP "
            "started from: build_student('vificlip', clip='ViT-B-16', pretrained='openai', checkpoint=...)"
        )
