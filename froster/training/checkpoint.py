"""Checkpoints written atomically and read back with ``weights_only`` loading.

A checkpoint is a directory ``<output_dir>/checkpoints/step_<N>/`` holding:

* ``model.safetensors``: the distiller's state dict (student + projectors; never the teacher,
  which reloads from its source), with the run config in the safetensors metadata;
* ``optimizer.pt``: the AdamW state (plain tensors and numbers, loaded with ``weights_only=True``);
* ``rng.pt``: the Python, NumPy, torch CPU and CUDA random states of every rank;
* ``average.safetensors``: the running weight average, when averaging has started;
* ``state.json``: step, epoch, position in the epoch, schedule and averaging counters;
* ``config.json``: the run config (:class:`froster.training.configs.RunConfig`).

Every file is written to a temporary file in its final directory, flushed, ``fsync``-ed and
moved into place with ``os.replace``; the directory is assembled under a temporary name and
renamed when complete, and only then does ``checkpoints/latest`` point to it. A crash at any
moment therefore leaves the previous checkpoint and the pointer to it intact; the temporary
``.step_*.tmp/`` and ``.<name>.*.tmp`` it may leave are removed by :func:`sweep_leftovers` when the
next run holds the directory (:mod:`froster.training.atomic_files`). Files and directories are
created with the process's umask, like any other file the user writes.

When ``latest`` is missing or names a checkpoint that is not there, :func:`latest_checkpoint` falls
back to the newest complete checkpoint (with a warning), or refuses when none is complete: a run
directory with checkpoints never silently restarts from step 0.
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union, cast

import numpy as np
import torch

# atomic_write_bytes and sweep_leftovers are part of this module's interface too.
from froster.training.atomic_files import atomic_write_bytes, create_temp_dir, fsync_dir, sweep_leftovers

PathLike = Union[str, os.PathLike]
LATEST = "latest"
FORMAT_VERSION = 1
REQUIRED_FILES = ("model.safetensors", "optimizer.pt", "rng.pt", "state.json", "config.json")


class CheckpointError(RuntimeError):
    """A run's checkpoints cannot be used: none is complete, or the one asked for is broken."""


class WeightsFileError(ValueError):
    """A file given as weights is not a readable safetensors file (another format, truncated, ...)."""


# -- weights files -----------------------------------------------------------------------------

def torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_weights(path: PathLike, state: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write a state dict as safetensors, atomically; ``metadata`` values must be strings."""
    from safetensors.torch import save

    # Copies: safetensors refuses tensors that share storage, and CPU views would share it.
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}
    return atomic_write_bytes(path, save(tensors, metadata=dict(metadata or {})))


def load_weights(path: PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(state dict, metadata)`` of a safetensors file; NaN or infinite weights are refused, naming the key."""
    from safetensors.torch import load_file

    from froster.weights_safety import check_finite

    metadata = weights_metadata(path)  # WeightsFileError for anything but a safetensors file
    with _weights_errors(path):
        state = load_file(os.fspath(path))
    check_finite(state, repr(os.fspath(path)))
    return state, metadata


def weights_metadata(path: PathLike) -> dict[str, str]:
    """The metadata of a safetensors file (its header only: cheap for any size).

    Raises:
        WeightsFileError: ``path`` is not a safetensors file, or a truncated one.
        FileNotFoundError, IsADirectoryError: No such file, or a directory.
    """
    from safetensors import safe_open

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a weights file")
    with _weights_errors(path):
        with safe_open(os.fspath(path), framework="pt") as handle:
            return dict(handle.metadata() or {})


class _weights_errors:
    """Turns safetensors' parse errors about ``path`` into a :class:`WeightsFileError`."""

    def __init__(self, path: PathLike):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> Literal[False]:
        from safetensors import SafetensorError

        if isinstance(error, SafetensorError):
            raise WeightsFileError(
                f"{self.path} is not a safetensors weights file, or it is truncated ({error}); "
                "give a .safetensors file written by froster train, or a run or checkpoint directory"
            ) from None
        return False


# -- random states -----------------------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """The Python, NumPy, torch CPU and CUDA random states of this process, as plain data."""
    # The global RandomState is an MT19937: its state is the legacy tuple (numpy's stub, whose
    # default overload is legacy=False, says a dict).
    state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    kind, keys, pos, has_gauss, cached = state
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


# -- checkpoint directories --------------------------------------------------------------------

def checkpoint_name(step: int) -> str:
    return f"step_{step:09d}"


def save_checkpoint(
    directory: PathLike,
    step: int,
    *,
    model_state: Mapping[str, torch.Tensor],
    optimizer_state: Mapping[str, Any],
    rng_states: list[dict[str, Any]],
    state: Mapping[str, Any],
    config_json: str,
    average_state: Optional[Mapping[str, torch.Tensor]] = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``directory`` and point ``directory/latest`` to it.

    Args:
        directory: The run's ``checkpoints`` folder.
        step: Global step; names the checkpoint.
        model_state: Distiller state dict (student + projectors).
        optimizer_state: ``optimizer.state_dict()``.
        rng_states: One :func:`rng_state` per rank, in rank order.
        state: Counters for ``state.json`` (step, epoch, schedule, ...).
        config_json: The run config as JSON.
        average_state: Running weight average, if any.
        keep: Checkpoints kept; older ones are deleted once the new one is in place.

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(step)
    staging = create_temp_dir(directory, final.name)
    try:
        metadata = {"format": "pt", "froster_config": config_json, "step": str(step)}
        save_weights(staging / "model.safetensors", model_state, metadata)
        if average_state is not None:
            save_weights(staging / "average.safetensors", average_state, metadata)
        atomic_write_bytes(staging / "optimizer.pt", torch_bytes(dict(optimizer_state)))
        atomic_write_bytes(staging / "rng.pt", torch_bytes(list(rng_states)))
        body = dict(state, step=step, format_version=FORMAT_VERSION)
        atomic_write_bytes(staging / "state.json", json.dumps(body, indent=2, sort_keys=True).encode())
        atomic_write_bytes(staging / "config.json", config_json.encode())
        if final.exists():  # re-saving a step (e.g. after a resume): remove the old one first
            shutil.rmtree(final)
        os.replace(staging, final)
        fsync_dir(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write_bytes(directory / LATEST, final.name.encode())
    _prune(directory, keep, final.name)
    return final


def _prune(directory: Path, keep: int, newest: str) -> None:
    names = sorted(p.name for p in directory.glob("step_*") if p.is_dir())
    for name in names[: max(len(names) - max(keep, 1), 0)]:
        if name != newest:
            shutil.rmtree(directory / name, ignore_errors=True)


def latest_checkpoint(directory: PathLike) -> Optional[Path]:
    """The checkpoint to resume from in a run's ``checkpoints`` folder; ``None`` when it has none.

    That is the one ``directory/latest`` points to. When ``latest`` is missing, or points to a
    checkpoint that is not there, the newest complete checkpoint is taken instead, with a warning.

    Raises:
        CheckpointError: ``latest`` or ``step_*`` checkpoints are there, but no complete
            checkpoint (see :func:`is_complete_checkpoint`).
    """
    directory = Path(directory)
    pointer = directory / LATEST
    named = pointer.read_text().strip() if pointer.is_file() else None
    if named and (directory / named).is_dir():
        return directory / named
    candidates = sorted((p for p in directory.glob("step_*") if p.is_dir()), reverse=True)
    if named is None and not candidates:
        return None
    found = next((p for p in candidates if is_complete_checkpoint(p)), None)
    problem = f"{pointer} names {named}, which does not exist" if named else f"{directory} has no checkpoints/latest pointer"
    if found is None:
        listed = f" ({', '.join(p.name for p in candidates[:5])})" if candidates else ""
        raise CheckpointError(
            f"{problem}, and none of the {len(candidates)} checkpoints in it is complete{listed}; "
            "resume from another checkpoint (--resume <path>) or start afresh (--resume none)"
        )
    warnings.warn(f"{problem}; resuming from the newest complete checkpoint, {found.name}", stacklevel=2)
    return found


def is_complete_checkpoint(path: PathLike) -> bool:
    """Whether ``path`` holds every file of a checkpoint, with a readable ``state.json`` and weights
    header (cheap: no tensor is read)."""
    path = Path(path)
    if not all((path / name).is_file() for name in REQUIRED_FILES):
        return False
    try:
        json.loads((path / "state.json").read_text())
        weights_metadata(path / "model.safetensors")
    except (OSError, ValueError):
        return False
    return True


def resolve_checkpoint(path: PathLike) -> Path:
    """A checkpoint directory from itself, a run's output dir or its ``checkpoints`` folder."""
    path = Path(path)
    for candidate in (path, path / "checkpoints"):
        if (candidate / "state.json").is_file():
            return candidate
        found = latest_checkpoint(candidate)
        if found is not None:
            return found
    raise FileNotFoundError(f"no checkpoint at {path} (looked for state.json and checkpoints/latest)")


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint directory (see :func:`resolve_checkpoint`) without unpickling code.

    Returns:
        ``model``, ``optimizer``, ``rng`` (list per rank), ``state``, ``config_json``,
        ``average`` (or None) and ``path``.
    """
    path = resolve_checkpoint(path)
    model, _ = load_weights(path / "model.safetensors")
    average = load_weights(path / "average.safetensors")[0] if (path / "average.safetensors").is_file() else None
    return {
        "path": path,
        "model": model,
        "average": average,
        "optimizer": torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True),
        "rng": torch.load(path / "rng.pt", map_location="cpu", weights_only=True),
        "state": json.loads((path / "state.json").read_text()),
        "config_json": (path / "config.json").read_text(),
    }


__all__ = [
    "CheckpointError",
    "WeightsFileError",
    "atomic_write_bytes",
    "is_complete_checkpoint",
    "latest_checkpoint",
    "load_checkpoint",
    "load_weights",
    "resolve_checkpoint",
    "rng_state",
    "save_checkpoint",
    "save_weights",
    "set_rng_state",
    "sweep_leftovers",
    "weights_metadata",
]
