"""Resuming gives the identical result as an uninterrupted run (num_workers=0)."""
from __future__ import annotations

import json

import pytest
import torch

from froster.training.checkpoint import latest_checkpoint, load_checkpoint, load_weights
from froster.training.trainer import train


def _assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{what}: {len(different)} tensors differ, e.g. {different[:3]}"


@pytest.mark.parametrize("stop_at", [1, 2], ids=["mid-epoch", "epoch-end"])
def test_resume_equals_uninterrupted(tiny_config, tmp_path, stop_at):
    common = ("train.eval_at_end=false", "averaging.start_epoch=1", "data.num_workers=0")
    straight = tiny_config(*common, output_dir=tmp_path / "straight")
    assert train(straight, resume=None)["step"] == 4

    interrupted = tiny_config(*common, f"train.max_steps={stop_at}", output_dir=tmp_path / "resumed")
    first = train(interrupted, resume=None)
    assert not first["finished"] and first["step"] == stop_at
    state = json.loads((latest_checkpoint(tmp_path / "resumed" / "checkpoints") / "state.json").read_text())
    assert state["step"] == stop_at and state["batches_in_epoch"] == stop_at

    resumed = tiny_config(*common, output_dir=tmp_path / "resumed")  # same run, no step limit
    assert train(resumed, resume="auto")["finished"]

    for name in ("final", "avg"):
        a, _ = load_weights(tmp_path / "straight" / f"{name}.safetensors")
        b, _ = load_weights(tmp_path / "resumed" / f"{name}.safetensors")
        _assert_same_tensors(a, b, f"{name}.safetensors")
    ca, cb = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert ca["state"]["step"] == cb["state"]["step"] == 4
    for (ia, sa), (ib, sb) in zip(ca["optimizer"]["state"].items(), cb["optimizer"]["state"].items()):
        _assert_same_tensors(sa, sb, f"optimizer state of parameter {ia}")
    assert ca["optimizer"]["param_groups"] == cb["optimizer"]["param_groups"]


def test_checkpoints_are_pruned_and_hold_no_teacher(tiny_config, tmp_path):
    config = tiny_config("train.eval_at_end=false", "train.checkpoint_every_steps=1", "train.keep_checkpoints=2")
    train(config, resume=None)
    directory = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in directory.glob("step_*")) == ["step_000000003", "step_000000004"]
    assert latest_checkpoint(directory).name == "step_000000004"
    ckpt = load_checkpoint(directory)
    assert not any("teacher" in k for k in ckpt["model"])
    assert {"student.logit_scale", "video_projector.fc2.weight", "text_projector.fc2.weight"} <= set(ckpt["model"])
    assert json.loads(ckpt["config_json"])["train"]["output_dir"] == str(tmp_path / "run")
