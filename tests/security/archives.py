"""Hostile and odd weights files, written the way an attacker or a careless tool would write them."""
from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import torch
import torch.nn as nn


class _TupleStatePayload(nn.Module):
    """Restores itself from a tuple, and on the way creates a file (``torch.from_file(shared=True)``)."""

    def __init__(self, marker: str):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.marker = marker

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, str, bool]:
        return (self.weight, self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, str, bool]) -> None:
        self.marker = state[1]
        self.training = state[2]
        # Used in the result, so the compiler keeps the call: it creates the marker file at load.
        self.weight = state[0] + 0 * torch.from_file(self.marker, shared=True, size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class _DictStatePayload(nn.Module):
    """Like :class:`_TupleStatePayload`, with a state that looks like a dict of attributes."""

    def __init__(self, marker: str):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.marker = marker

    @torch.jit.export
    def __getstate__(self) -> Dict[str, str]:
        return {"marker": self.marker}

    @torch.jit.export
    def __setstate__(self, state: Dict[str, str]) -> None:
        self.marker = state["marker"]
        self.training = False
        self.weight = torch.from_file(self.marker, shared=True, size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class _HostileModel(nn.Module):
    """A model whose ``visual`` tower carries the payload, with CLIP-looking weights beside it."""

    def __init__(self, payload: nn.Module):
        super().__init__()
        self.visual = payload
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))
        self.register_buffer("input_resolution", torch.tensor(32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x) * self.logit_scale


HOSTILE_KINDS = ("tuple_state", "dict_state")


def write_hostile_archive(path: Path, marker: Path, kind: str = "tuple_state") -> Path:
    """A TorchScript archive whose loading (``torch.jit.load``) creates the file ``marker``."""
    payload = {"tuple_state": _TupleStatePayload, "dict_state": _DictStatePayload}[kind](os.fspath(marker))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation warnings
        torch.jit.script(_HostileModel(payload)).save(os.fspath(path))
    assert not marker.exists(), "writing the archive must not create the marker"
    return path


class _System:
    """Pickles as a call of ``os.system``: what a plain pickle exploit looks like."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def replace_member(source: Path, target: Path, member_suffix: str, data: bytes) -> Path:
    """A copy of the zip ``source`` with the member ending in ``member_suffix`` replaced by ``data``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, data if info.filename.endswith(member_suffix) else old.read(info))
    return target


def write_pickle_exploit_archive(valid_archive: Path, target: Path, marker: Path) -> Path:
    """A TorchScript-laid-out archive whose ``data.pkl`` calls ``os.system`` to create ``marker``."""
    data = pickle.dumps(_System(f"touch {os.fspath(marker)}"), protocol=2)
    return replace_member(valid_archive, target, "/data.pkl", data)


def add_member(source: Path, target: Path, name: str, data: bytes) -> Path:
    """A copy of the zip ``source`` with one more member."""
    target.write_bytes(source.read_bytes())
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(name, data)
    return target
