"""Atomic checkpoint writes and weights_only loading."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from froster.training import atomic_files
from froster.training import checkpoint as C


def _save(directory, step, value):
    model = torch.nn.Linear(2, 2)
    torch.nn.init.constant_(model.weight, value)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()  # gives the optimiser a state to save
    return C.save_checkpoint(
        directory, step, model_state=weights, optimizer_state=optimizer.state_dict(),
        rng_states=[C.rng_state()], state={"epoch": step}, config_json="{}",
    )


def test_failure_mid_checkpoint_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    _save(tmp_path, 1, 1.0)
    writes = {"n": 0}
    real = C.atomic_write_bytes

    def failing(path, data):
        writes["n"] += 1
        if writes["n"] == 2:  # after model.safetensors, before the rest
            raise OSError("disk full")
        return real(path, data)

    monkeypatch.setattr(C, "atomic_write_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path, 2, 2.0)
    monkeypatch.undo()

    assert C.latest_checkpoint(tmp_path).name == "step_000000001"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_000000001"], "no half-written leftovers"
    loaded = C.load_checkpoint(tmp_path)
    assert loaded["state"]["epoch"] == 1 and torch.all(loaded["model"]["weight"] == 1.0)


def test_failure_mid_file_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "avg.safetensors"
    C.save_weights(target, {"w": torch.ones(3)})

    def crash(handle):
        raise OSError("power cut")  # the new bytes are written but never made durable or moved

    monkeypatch.setattr(atomic_files, "_fsync", crash)
    with pytest.raises(OSError, match="power cut"):
        C.save_weights(target, {"w": torch.zeros(3)})
    monkeypatch.undo()
    state, _ = C.load_weights(target)
    assert torch.equal(state["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["avg.safetensors"]


def test_random_states_round_trip_and_load_weights_only(tmp_path):
    path = _save(tmp_path, 3, 0.5)
    expected = (random.random(), np.random.rand(), torch.rand(2))
    C.set_rng_state(C.load_checkpoint(path)["rng"][0])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(2), expected[2])
    # Every .pt file of a checkpoint is plain data: loadable with weights_only=True.
    for name in ("optimizer.pt", "rng.pt"):
        torch.load(path / name, weights_only=True)
    assert C.resolve_checkpoint(tmp_path) == path
    with pytest.raises(FileNotFoundError):
        C.resolve_checkpoint(tmp_path / "missing")
