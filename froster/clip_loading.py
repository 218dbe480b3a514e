"""Build open_clip models and load CLIP weights from the files users already have.

Three sources of weights are understood:

* open_clip pretrained tags (``pretrained="openai"``, ``"laion2b_s34b_b88k"``, ...): downloaded by
  open_clip where a network exists;
* OpenAI's TorchScript archives (``ViT-B-16.pt``): open_clip's default ``weights_only=True`` load
  refuses them, so their tensors are read by :mod:`froster.torchscript_archive`, which runs none
  of the code they carry (``trust_code=True`` opens them with ``torch.jit.load``);
* plain state dicts (``.pt``/``.pth``/``.bin``, optionally nested under ``model_state``,
  ``state_dict`` or ``model``, optionally with a ``module.`` prefix) and ``.safetensors`` files.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Mapping, Optional, TypeGuard, Union

import torch
import torch.nn as nn

from froster.torchscript_archive import is_torchscript_archive, read_torchscript_state_dict
from froster.weights_safety import check_dtypes, check_finite

PathLike = Union[str, os.PathLike]

# Entries of OpenAI's archives that are hyper-parameters, not weights.
OPENAI_NON_WEIGHT_KEYS = ("input_resolution", "context_length", "vocab_size")
# Where training checkpoints nest their weights (FROSTER/Open-VCLIP use `model_state`).
_NESTING_KEYS = ("model_state", "state_dict", "model", "module")


def is_weights_file(pretrained: Optional[PathLike]) -> TypeGuard[PathLike]:
    """Whether ``pretrained`` names a local file rather than an open_clip tag."""
    return pretrained is not None and os.path.isfile(os.fspath(pretrained))


def read_state_dict(path: PathLike, prefix: str = "", *, weights_only: bool = True, trust_code: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from a weights file in any of the supported layouts.

    Args:
        path: A ``.safetensors`` file, an OpenAI TorchScript archive or a ``torch.save`` file
            (a state dict, possibly nested under ``model_state``/``state_dict``/``model``).
        prefix: When given, only keys under this prefix are kept, with the prefix removed
            (e.g. ``"model."`` for checkpoints that wrap the CLIP model).
        weights_only: Passed to ``torch.load``. Training checkpoints that pickle a config object
            (ViFi-CLIP's, X-CLIP's) need ``False``; only do that for files you trust.
        trust_code: Open TorchScript archives with ``torch.jit.load``, which runs the code they
            carry; only for files you trust. By default their tensors are read without running
            anything (:mod:`froster.torchscript_archive`). See the trust model in ``docs/api.md``.

    Returns:
        A flat ``{name: tensor}`` dict on the CPU; entries that are not tensors are dropped.

    Raises:
        froster.weights_safety.CorruptWeightsError: A floating tensor holds NaN or infinite values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    elif is_torchscript_archive(path):
        state = read_torchscript_state_dict(path, trust_code=trust_code)
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=weights_only)
        except pickle.UnpicklingError as error:
            raise ValueError(
                f"{str(path)!r} holds more than tensors and plain containers ({error}); if you trust "
                "the file, pass weights_only=False"
            ) from error
    state = _unnest(state, path)
    state = {
        k[len("module."):] if k.startswith("module.") else k: v
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and k not in OPENAI_NON_WEIGHT_KEYS
    }
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise KeyError(f"no key of {str(path)!r} starts with the prefix {prefix!r}")
    check_finite(state, repr(str(path)))
    return state


def _unnest(state: Any, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(state, Mapping) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        inner = next((state[k] for k in _NESTING_KEYS if k in state), None)
        if inner is None:
            raise ValueError(
                f"{str(path)!r} holds no tensors at the top level nor under {_NESTING_KEYS}, so no state "
                f"dict; top-level keys: {sorted(map(str, state))[:10]}"
            )
        state = inner
    if not isinstance(state, Mapping):
        raise ValueError(f"{str(path)!r} does not contain a state dict (got {type(state).__name__})")
    return dict(state)


def describe_key_mismatch(missing: list[str], unexpected: list[str], shape_errors: list[str], limit: int = 8) -> str:
    """A readable report of what differs between a checkpoint and a model."""
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shape_errors)):
        if keys:
            shown = ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
            parts.append(f"{len(keys)} {label}: {shown}")
    return "; ".join(parts)


def load_state_dict_checked(model: nn.Module, state: Mapping[str, torch.Tensor], strict: bool = True, source: str = "checkpoint"):
    """``load_state_dict`` that names differing keys and shapes in its error.

    Returns:
        The ``(missing, unexpected)`` key lists (empty when ``strict``).
    """
    own = model.state_dict()
    # TorchScript archives also carry non-persistent buffers (e.g. CLIP's `attn_mask`); the model
    # rebuilds those itself, so they are neither unexpected nor loaded.
    non_persistent = {name for name, _ in model.named_buffers()} - set(own)
    state = {k: v for k, v in state.items() if k not in non_persistent}
    shape_errors = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if shape_errors or (strict and (missing or unexpected)):
        raise ValueError(
            f"{source} does not match {type(model).__name__}: "
            f"{describe_key_mismatch(missing, unexpected, shape_errors)}"
        )
    check_dtypes(own, state, source)
    model.load_state_dict(state, strict=False)
    return missing, unexpected


def create_open_clip(
    clip: Union[str, nn.Module],
    pretrained: Optional[PathLike] = None,
    *,
    precision: str = "fp32",
    device: Union[str, torch.device] = "cpu",
    activation: str = "auto",
    allow_activation_mismatch: bool = False,
    trust_code: bool = False,
    **model_overrides,
) -> tuple[nn.Module, Any]:
    """Build an open_clip model and its tokenizer, with the MLP activation its weights were trained with.

    Args:
        clip: An open_clip model name (``"ViT-B-16"``) or a model the caller already built.
        pretrained: An open_clip tag (downloads where a network exists) or a local weights file
            in any layout understood by :func:`read_state_dict`. ``None`` keeps random weights.
        precision: open_clip precision string (``"fp32"``, ``"bf16"``, ``"fp16"``, ...).
        device: Where to put the model.
        activation: ``"auto"`` builds the activation the weights were trained with when they say
            (OpenAI's weights: QuickGELU, see :mod:`froster.clip_activation`), else the model
            name's; ``"quick_gelu"`` or ``"gelu"`` ask for one.
        allow_activation_mismatch: Build (or load into ``clip``) what was asked even where the
            weights were trained with the other activation.
        trust_code: Let a TorchScript ``pretrained`` file run its code (``torch.jit.load``); see
            :func:`read_state_dict`. Only for files you trust.
        **model_overrides: open_clip config overrides (``embed_dim``, ``vision_cfg``,
            ``text_cfg``), e.g. to build tiny models in tests. open_clip's own ``quick_gelu=``
            is understood as ``activation=``.

    Returns:
        ``(model, tokenizer)``; the tokenizer is ``None`` when ``clip`` is a model instance whose
        name is unknown.

    Raises:
        ActivationMismatchError: The weights were trained with the other activation than the
            one asked for (or than ``clip``'s), unless ``allow_activation_mismatch``.
    """
    import open_clip

    from froster import clip_activation as A

    activation = _activation_argument(activation, model_overrides.pop("quick_gelu", None))
    if isinstance(clip, nn.Module):
        if pretrained is not None:
            A.check_loaded_activation(
                clip, A.weights_activation(None, pretrained), os.fspath(pretrained), allow_mismatch=allow_activation_mismatch
            )
            load_state_dict_checked(clip, read_state_dict(pretrained, trust_code=trust_code), source=str(pretrained))
        return clip, None
    if not isinstance(clip, str):
        raise TypeError(f"clip must be an open_clip model name or an nn.Module, got {type(clip).__name__}")
    if clip not in open_clip.list_models():
        raise ValueError(f"clip={clip!r} is not an open_clip model name; e.g. ViT-B-32, ViT-B-16, ViT-L-14")
    built = A.resolve_activation(clip, pretrained, activation, allow_mismatch=allow_activation_mismatch)
    weights_file = pretrained if is_weights_file(pretrained) else None
    model = open_clip.create_model(
        clip,
        pretrained=None if weights_file is not None else pretrained,
        precision=precision,
        device=device,
        # force_quick_gelu sets the config open_clip compares with the tag's, so no false warning.
        force_quick_gelu=built == A.QUICK_GELU,
        **({"quick_gelu": False} if built == A.GELU else {}),
        **model_overrides,
    )
    if weights_file is not None:
        state = read_state_dict(weights_file, trust_code=trust_code)
        load_state_dict_checked(model, state, source=os.fspath(weights_file))
    tokenizer = open_clip.get_tokenizer(clip, context_length=getattr(model, "context_length", None))
    return model, tokenizer


def _activation_argument(activation: str, quick_gelu: Optional[bool]) -> str:
    from froster.clip_activation import GELU, QUICK_GELU, check_activation_name

    check_activation_name(activation)
    if quick_gelu is None:
        return activation
    from_flag = QUICK_GELU if quick_gelu else GELU
    if activation not in ("auto", from_flag):
        raise ValueError(f"quick_gelu={quick_gelu} contradicts activation={activation!r}; pass one of them")
    return from_flag


def clip_embed_dim(model: nn.Module) -> int:
    """Output dimension of an open_clip model's joint embedding space."""
    visual = getattr(model, "visual", None)
    if visual is not None and getattr(visual, "output_dim", None):
        return int(visual.output_dim)
    projection = getattr(model, "text_projection", None)
    if isinstance(projection, torch.Tensor):
        return int(projection.shape[1])
    raise ValueError(f"cannot tell the embedding dimension of {type(model).__name__}; pass it explicitly")
