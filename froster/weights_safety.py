"""Refuse corrupted weights at load, naming the key, before anything is computed from them.

A NaN or an infinity in a weight, or an integer tensor where the model holds a float one, loads
without complaint (``load_state_dict`` copies and casts) and turns every later number into
nonsense: an evaluation then reports chance-level "accuracy" and a prediction ``nan%``. Two
checks stop that at load:

* :func:`check_finite`, where weights are read (``read_state_dict``, ``load_weights``): every
  floating tensor must be finite. The one exception is an additive attention mask, which holds
  ``-inf`` by design (open_clip's causal mask travels in traced archives): a tensor of two or more
  dimensions whose values are all ``0`` or ``-inf``, with at least one ``0``. NaN and ``+inf`` are
  never accepted.
* :func:`check_dtypes`, where weights meet a model: a key the model holds as a floating tensor
  must come as a floating tensor.
"""
from __future__ import annotations

from typing import Mapping

import torch

__all__ = ["CorruptWeightsError", "check_dtypes", "check_finite"]

_SHOWN = 5  # keys named in a message


class CorruptWeightsError(ValueError):
    """Weights holding NaN or infinite values, or of a non-floating dtype where a float is expected."""


def _is_additive_mask(tensor: torch.Tensor) -> bool:
    if tensor.dim() < 2 or tensor.is_complex():
        return False
    zero, minus_inf = tensor == 0, tensor == float("-inf")
    return bool((zero | minus_inf).all()) and bool(zero.any())


def _describe(tensor: torch.Tensor) -> str:
    nan = int(torch.isnan(tensor).sum())
    inf = int(torch.isinf(tensor).sum())
    counts = [f"{n} {label}" for n, label in ((nan, "NaN"), (inf, "infinite")) if n]
    return f"{' and '.join(counts)} of {tensor.numel()} values"


def check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse ``state`` when a floating tensor holds NaN or infinite values (additive masks aside).

    Args:
        state: ``{name: tensor}``; non-floating tensors are not looked at.
        source: Names the file in the message.

    Raises:
        CorruptWeightsError: naming each bad key with its count of NaN and infinite values.
    """
    bad = []
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or not (value.is_floating_point() or value.is_complex()):
            continue
        if bool(torch.isfinite(value).all()) or _is_additive_mask(value):
            continue
        bad.append(f"{key} ({_describe(value)})")
    if bad:
        shown = ", ".join(bad[:_SHOWN]) + (f", ... ({len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else "")
        raise CorruptWeightsError(
            f"{source} holds weights that are not finite: {shown}. Refusing to load them: every result computed "
            "from them would be meaningless (the file is corrupted, or the training run that wrote it diverged)"
        )


def check_dtypes(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse ``state`` when a key that ``expected`` holds as a floating tensor comes with another dtype.

    Args:
        expected: The model's own ``state_dict()``.
        state: The weights about to be loaded into it.
        source: Names the file in the message.

    Raises:
        CorruptWeightsError: naming each such key, the dtype that came and the one expected.
    """
    bad = [
        f"{key} is {value.dtype}, the model's {expected[key].dtype}"
        for key, value in state.items()
        if key in expected
        and isinstance(value, torch.Tensor)
        and expected[key].is_floating_point()
        and not value.is_floating_point()
    ]
    if bad:
        shown = "; ".join(bad[:_SHOWN]) + (f"; ... ({len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else "")
        raise CorruptWeightsError(
            f"{source} holds non-floating weights where the model expects floating ones: {shown}. Refusing to "
            "load them (they would be cast silently into meaningless values)"
        )
