"""Which MLP activation a CLIP computes, and which one its weights were trained with.

OpenAI's CLIP, and every model fine-tuned from it (FROSTER, Open-VCLIP, ViFi-CLIP, X-CLIP), uses
QuickGELU, ``x * sigmoid(1.702 x)``. open_clip's plain model names (``ViT-B-16``) build exact
GELU; only the ``-quickgelu`` names and the ``quick_gelu=True`` config build QuickGELU, and
``create_model("ViT-B-16", pretrained="openai")`` merely warns about the difference. Weights run
with the other activation load without a missing key and give different features, so froster
decides the activation from the weights wherever they say it:

* an open_clip pretrained tag: its pretrained config's ``quick_gelu`` entry (``openai``: True);
* an OpenAI-style TorchScript archive: the activation class its code declares (read as text,
  nothing is run);
* the released FROSTER / Open-VCLIP, ViFi-CLIP and X-CLIP layouts: QuickGELU (all start from
  OpenAI's CLIP);
* weights froster wrote: the activation recorded in the run config stored with them.

Anything else (a plain state dict) says nothing, and the model name's own config decides.
"""
from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any, Final, Literal, Mapping, Optional, Union, cast

import torch.nn as nn

Activation = Literal["quick_gelu", "gelu"]
QUICK_GELU: Final = "quick_gelu"
GELU: Final = "gelu"
ACTIVATIONS: tuple[Activation, ...] = (QUICK_GELU, GELU)
AUTO: Final = "auto"

# Declarations of the MLP activation in the code of a traced or scripted CLIP, e.g.
# `gelu : __torch__.clip.model.QuickGELU` (OpenAI) or `gelu : __torch__.torch.nn.modules.activation.GELU`.
_DECLARED_ACTIVATION = re.compile(r"\bgelu\s*:\s*__torch__\.[\w.]*\.(QuickGELU|GELU)\b")


class ActivationMismatchError(ValueError):
    """Weights trained with one MLP activation meet a model built with the other."""


def check_activation_name(activation: str, name: str = "activation") -> Union[Activation, Literal["auto"]]:
    """``activation`` if it is ``"auto"``, ``"quick_gelu"`` or ``"gelu"``; a ``ValueError`` otherwise."""
    if activation not in (AUTO,) + ACTIVATIONS:
        raise ValueError(f"{name} must be one of {(AUTO,) + ACTIVATIONS}, got {activation!r}")
    return cast(Union[Activation, Literal["auto"]], activation)


def model_activation(model: nn.Module) -> Optional[str]:
    """The activation of the MLPs in ``model``'s CLIP transformer blocks, or ``None`` when it has none.

    Only the CLIP towers' blocks count (modules named ``...transformer.resblocks.<i>...mlp.gelu``,
    however a student wraps them): modules a student adds may use another activation on purpose.

    Raises:
        ValueError: The blocks mix both activations.
    """
    found = set()
    for name, module in model.named_modules():
        if "transformer.resblocks." in name and name.endswith("mlp.gelu"):
            found.add(QUICK_GELU if type(module).__name__ == "QuickGELU" else GELU if isinstance(module, nn.GELU) else type(module).__name__)
    if len(found) > 1:
        raise ValueError(f"{type(model).__name__} mixes MLP activations in its CLIP blocks: {sorted(found)}")
    return next(iter(found), None)


def name_activation(clip_name: str) -> Activation:
    """The activation open_clip's config for the model name ``clip_name`` builds."""
    import open_clip

    config = open_clip.get_model_config(clip_name) or {}
    return QUICK_GELU if config.get("quick_gelu", False) else GELU


def tag_activation(clip_name: str, tag: str) -> Optional[Activation]:
    """The activation the open_clip pretrained tag ``tag`` of ``clip_name`` was trained with, if it is a tag."""
    import open_clip

    config = open_clip.get_pretrained_cfg(clip_name, tag)
    if not config:
        return None
    if "quick_gelu" in config:
        return QUICK_GELU if config["quick_gelu"] else GELU
    # open_clip releases before 2.27 do not record it; OpenAI's own weights are QuickGELU.
    return QUICK_GELU if tag == "openai" or "openaipublic" in str(config.get("url", "")) else GELU


def torchscript_activation(path: Union[str, os.PathLike]) -> Optional[Activation]:
    """The MLP activation declared in the code of a TorchScript archive (read as text, never run)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return None
    found: set[Activation] = set()
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if "/code/" in name and name.endswith(".py"):
                text = archive.read(name).decode("utf-8", errors="replace")
                found.update(QUICK_GELU if kind == "QuickGELU" else GELU for kind in _DECLARED_ACTIVATION.findall(text))
    return found.pop() if len(found) == 1 else None


def config_activation(metadata: Mapping[str, str]) -> Optional[Activation]:
    """The student activation recorded in the run config a froster weights file carries, if any."""
    import json

    text = metadata.get("froster_config")
    if not text:
        return None
    student: Any = json.loads(text).get("student", {})
    activation = student.get("activation", AUTO) if isinstance(student, dict) else AUTO
    return activation if activation in ACTIVATIONS else None


def file_activation(path: Union[str, os.PathLike]) -> Optional[Activation]:
    """The activation a local weights file says it was trained with (see the module docstring)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(os.fspath(path), framework="pt") as handle:
            return config_activation(handle.metadata() or {})
    return torchscript_activation(path)


def weights_activation(clip_name: Optional[str], pretrained: Optional[Union[str, os.PathLike]]) -> Optional[Activation]:
    """The activation ``pretrained`` (a tag of ``clip_name`` or a local file) was trained with, if known."""
    if pretrained is None:
        return None
    if os.path.isfile(os.fspath(pretrained)):
        return file_activation(pretrained)
    return tag_activation(clip_name, os.fspath(pretrained)) if clip_name else None


def resolve_activation(
    clip_name: str,
    pretrained: Optional[Union[str, os.PathLike]] = None,
    activation: str = AUTO,
    *,
    allow_mismatch: bool = False,
) -> Activation:
    """The activation to build ``clip_name`` with, for the weights ``pretrained``.

    Args:
        clip_name: An open_clip model name (``ViT-B-16``, ``ViT-B-16-quickgelu``, ...).
        pretrained: An open_clip tag, a local weights file or ``None``.
        activation: ``"auto"`` follows the weights when they say, else the model name's config;
            ``"quick_gelu"``/``"gelu"`` ask for one.
        allow_mismatch: Build what was asked even where the weights say otherwise.

    Raises:
        ActivationMismatchError: An explicit ``activation`` (or a ``-quickgelu`` name) that
            contradicts what the weights were trained with, unless ``allow_mismatch``.
    """
    asked = check_activation_name(activation)
    trained = weights_activation(clip_name, pretrained)
    named = name_activation(clip_name)
    if asked == AUTO:
        if named != QUICK_GELU:
            return trained or named
        asked = named  # a `-quickgelu` name asks for QuickGELU explicitly
    if trained is not None and trained != asked and not allow_mismatch:
        raise ActivationMismatchError(
            f"{str(pretrained)!r} was trained with {trained} but {asked} was asked for "
            f"({clip_name}); leave activation='auto' (or build with activation={trained!r}) to compute "
            "what the weights were trained for, or pass allow_activation_mismatch=True if you mean it"
        )
    return asked


def check_loaded_activation(model: nn.Module, trained: Optional[str], source: str, *, allow_mismatch: bool = False) -> None:
    """Refuse to load weights trained with ``trained`` into ``model`` when it computes the other activation.

    Args:
        model: The model about to receive the weights.
        trained: The weights' activation, or ``None`` when unknown (nothing is checked).
        source: Names the weights in the message.
        allow_mismatch: Skip the check.

    Raises:
        ActivationMismatchError: naming both activations and the fix.
    """
    if trained is None or allow_mismatch:
        return
    built = model_activation(model)
    if built is not None and built != trained:
        raise ActivationMismatchError(
            f"{source} was trained with {trained} but {type(model).__name__} was built with {built}: the "
            f"weights would load and compute something else. Build the model with activation={trained!r} "
            f"(for open_clip names, e.g. 'ViT-B-16' with activation={trained!r}"
            + (", or 'ViT-B-16-quickgelu'" if trained == QUICK_GELU else "")
            + "), or pass allow_activation_mismatch=True if you mean it"
        )


__all__ = [
    "ACTIVATIONS",
    "AUTO",
    "ActivationMismatchError",
    "GELU",
    "QUICK_GELU",
    "check_activation_name",
    "check_loaded_activation",
    "config_activation",
    "file_activation",
    "model_activation",
    "name_activation",
    "resolve_activation",
    "tag_activation",
    "torchscript_activation",
    "weights_activation",
]
