"""Input checks with errors that name the argument, what was expected and what came.

Two kinds: checks of tensors handed to the distiller (videos, prompts, labels, features), and
checks of config values (:class:`FieldValueError` and the ``require_*`` helpers), which the
config dataclasses run when they are built, so a bad value is refused before anything is built
from it.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence, Union, cast

import torch
import torch.nn as nn

Prompts = Union[torch.Tensor, Sequence[str]]


# -- config values -----------------------------------------------------------------------------

class ConfigError(ValueError):
    """A config key that does not exist, a value of the wrong type or out of range, or config
    text that is not a JSON object (also importable from :mod:`froster.training.overrides`)."""


class FieldValueError(ConfigError):
    """A config field holds a value out of its range; ``field`` names it, the message says why.

    Config parsers prefix the field with its section (``optim.lr: expected ...``).
    """

    def __init__(self, field: str, expected: str, value: Any):
        super().__init__(f"{field}: expected {expected}, got {value!r}")
        self.field, self.expected, self.value = field, expected, value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_int(owner: Any, name: str, minimum: int = 1, optional: bool = False) -> None:
    """``owner.<name>`` must be an integer >= ``minimum`` (or None when ``optional``)."""
    value = getattr(owner, name)
    if value is None and optional:
        return
    if not _is_int(value) or value < minimum:
        raise FieldValueError(name, f"an integer >= {minimum}" + (" or null" if optional else ""), value)


def require_number(owner: Any, name: str, low: float = 0.0, high: float = math.inf, *, low_open: bool = False,
                   high_open: bool = False, optional: bool = False) -> None:
    """``owner.<name>`` must be a finite number in the given range (or None when ``optional``).

    NaN and infinities are always refused: no range check catches NaN by itself.
    """
    value = getattr(owner, name)
    if value is None and optional:
        return
    fits = _is_number(value) and math.isfinite(value)
    fits = fits and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not fits:
        raise FieldValueError(name, _range_text(low, high, low_open, high_open) + (" or null" if optional else ""), value)


def _range_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(high):
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def require_bool(owner: Any, names: Iterable[str]) -> None:
    """Each ``owner.<name>`` must be True or False."""
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, bool):
            raise FieldValueError(name, "true or false", value)


def loads_json(text: str, source: str = "config") -> Any:
    """``json.loads`` for config text, refusing what JSON does not allow but Python's parser takes.

    ``NaN``, ``Infinity`` and ``-Infinity`` are refused (``json.loads`` reads them as floats, and a
    NaN passes every ``<``/``>`` range check); syntax errors name ``source``, the line and column.

    Raises:
        ConfigError: Not valid JSON, or one of those constants.
    """
    import json

    def refuse(constant: str) -> None:
        raise _JSONConstant(constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except _JSONConstant as error:
        where = _position(text, str(error))
        raise ConfigError(f"{source}: {where}{error} is not a number JSON allows (use a finite number)") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: line {error.lineno}, column {error.colno}: not valid JSON ({error.msg})") from None


class _JSONConstant(ValueError):
    pass


def _position(text: str, constant: str) -> str:
    import re

    # The constant where a value starts (after ':', '[' or ','), not inside a string.
    match = re.search(r"[:\[,]\s*(" + re.escape(constant) + r")(?![\w])", text)
    if match is None:
        return ""
    index = match.start(1)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}: "


# -- tensors -----------------------------------------------------------------------------------


def check_video(video: object, name: str = "video", num_frames: Optional[int] = None, channels: int = 3) -> None:
    """``video`` must be a floating (B, C, T, H, W) tensor with ``channels`` channels."""
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, T, H, W), got {type(video).__name__}")
    if video.dim() != 5:
        raise ValueError(f"{name} must have shape (B, C, T, H, W) (5 dims), got {video.dim()} dims {tuple(video.shape)}")
    if not video.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (normalised pixels), got dtype {video.dtype}")
    if video.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels in dim 1 of (B, C, T, H, W), got {video.shape[1]} (shape {tuple(video.shape)})")
    if video.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(video.shape)})")
    if num_frames is not None and video.shape[2] != num_frames:
        raise ValueError(
            f"{name} has {video.shape[2]} frames in dim 2 of (B, C, T, H, W) (shape {tuple(video.shape)}), "
            f"but the student was built for num_frames={num_frames}"
        )


def check_prompts(prompts: object, name: str = "prompts") -> int:
    """``prompts`` must be a non-empty list of strings or a (K, L) token tensor; returns K."""
    if isinstance(prompts, torch.Tensor):
        if prompts.dim() != 2 or prompts.shape[0] == 0:
            raise ValueError(f"{name} as tokens must have shape (K, L) with K >= 1, got {tuple(prompts.shape)}")
        if prompts.is_floating_point():
            raise TypeError(f"{name} as tokens must be an integer tensor, got dtype {prompts.dtype}")
        return int(prompts.shape[0])
    if isinstance(prompts, str):
        raise TypeError(f"{name} must be a list of strings (one per class), got a single str {prompts!r}")
    if not isinstance(prompts, Sequence):
        raise TypeError(f"{name} must be a list of strings or a (K, L) token tensor, got {type(prompts).__name__}")
    if len(prompts) == 0:
        raise ValueError(f"{name} is empty: give at least one class prompt")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise TypeError(f"{name} must contain only strings; item {bad[0]} is {type(prompts[bad[0]]).__name__}")
    return len(prompts)


def check_student_video(student: nn.Module, video: object, name: str = "video") -> None:
    """:func:`check_video` against what ``student`` declares: its ``num_frames`` and its dtype.

    The video must have the dtype of the student's floating-point weights (a float64 video into a
    float32 model fails deep inside a convolution otherwise). Under autocast for the video's
    device, float32 and the autocast dtype work too: autocast casts those inputs itself (never
    float64 ones).
    """
    check_video(video, name, getattr(student, "num_frames", None))
    video = cast(torch.Tensor, video)  # check_video refused anything else
    expected = next((p.dtype for p in student.parameters() if p.is_floating_point()), None)
    if expected is None:
        return
    allowed = {expected}
    device = video.device.type
    if torch.is_autocast_enabled(device):
        allowed |= {torch.float32, torch.get_autocast_dtype(device)}
    if video.dtype not in allowed:
        raise TypeError(
            f"{name} has dtype {video.dtype} but the student's weights are {expected}: "
            f"convert it with {name}.to({expected})"
        )


def token_limits(encoder: nn.Module) -> tuple[Optional[int], Optional[int]]:
    """``(context length, vocabulary size)`` a text encoder declares, each None when it does not say.

    Read from the attributes open_clip's CLIP models carry (``context_length``, ``vocab_size``,
    ``token_embedding``), on the module itself or on the ``model`` it wraps (teachers).
    """
    context, vocab = None, None
    for module in (encoder, getattr(encoder, "model", None)):
        if module is None:
            continue
        declared_context, declared_vocab = getattr(module, "context_length", None), getattr(module, "vocab_size", None)
        if context is None and declared_context is not None:
            context = int(declared_context)
        if vocab is None and declared_vocab is not None:
            vocab = int(declared_vocab)
        embedding = getattr(module, "token_embedding", None)
        if vocab is None and isinstance(embedding, (nn.Embedding, nn.EmbeddingBag)):
            vocab = int(embedding.num_embeddings)
    return context, vocab


def check_tokens(tokens: torch.Tensor, encoders: Mapping[str, nn.Module], name: str = "prompts") -> torch.Tensor:
    """A (K, L) token tensor must fit every text encoder it goes to; returns ``tokens``.

    Args:
        tokens: (K, L) integer token ids.
        encoders: ``{"student": student, "teacher": teacher}``: whose context length (L must equal
            it: CLIP adds a positional embedding of that length) and vocabulary (ids in
            ``[0, vocab)``) apply, where they declare them (:func:`token_limits`).
        name: The argument, for the message.
    """
    low = high = None
    for who, encoder in encoders.items():
        context, vocab = token_limits(encoder)
        if context is not None and tokens.shape[1] != context:
            raise ValueError(
                f"{name} as tokens must have {context} columns (the context length of the {who}), "
                f"got shape {tuple(tokens.shape)}; tokenize with the {who}'s tokenizer"
            )
        if vocab is not None:
            if low is None or high is None:
                low, high = torch.stack([tokens.min(), tokens.max()]).tolist()  # one host sync
            if low < 0 or high >= vocab:
                raise ValueError(
                    f"{name} as tokens must hold ids in [0, {vocab}) (the vocabulary of the {who}), got ids in [{low}, {high}]"
                )
    return tokens


def check_labels(labels: object, batch_size: int, num_classes: int, name: str = "labels") -> None:
    """``labels`` must be an integer (B,) tensor with values in [0, K)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must hold integer class indices (torch.long), got dtype {labels.dtype}")
    if tuple(labels.shape) != (batch_size,):
        raise ValueError(f"{name} must have shape ({batch_size},) to match the video batch, got {tuple(labels.shape)}")
    low, high = torch.stack([labels.min(), labels.max()]).tolist()  # one host sync, not two
    if low < 0 or high >= num_classes:
        raise ValueError(f"{name} must lie in [0, {num_classes}) for {num_classes} prompts, got values in [{low}, {high}]")


def check_finite(features: Mapping[str, torch.Tensor]) -> None:
    """Raise a ``FloatingPointError`` naming every tensor of ``features`` with NaN or inf.

    All checks share one host synchronisation.
    """
    names = list(features)
    flags = torch.stack([torch.isfinite(features[n]).all() for n in names]).tolist()
    bad = [n for n, ok in zip(names, flags) if not ok]
    if bad:
        raise FloatingPointError(f"non-finite values (NaN or inf) in {', '.join(bad)}")
