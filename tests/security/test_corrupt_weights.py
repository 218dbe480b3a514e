"""Weights holding NaN or infinities, or integers where floats belong, are refused at load, naming the key.

Nothing is computed from them: ``froster eval`` writes no metrics and ``froster predict --json``
prints nothing (from such weights an evaluation would report chance-level "top-1", a prediction
``nan%``, and ``--json`` would print ``NaN``, which is not JSON).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from froster import build_student
from froster.adapters.checkpoints import load_student_checkpoint
from froster.clip_loading import create_open_clip, read_state_dict
from froster.testing import TINY_CLIP_NAME, tiny_build_kwargs, tiny_clip_overrides
from froster.weights_safety import CorruptWeightsError, check_dtypes, check_finite
from tests.security.conftest import tiny_run_overrides

TINY = tiny_clip_overrides()
POISONS = {"nan": float("nan"), "+inf": float("inf"), "-inf": float("-inf")}


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    dtype=st.sampled_from((torch.float32, torch.float16, torch.bfloat16, torch.float64)),
    poison=st.sampled_from(sorted(POISONS)),
    where=st.floats(0, 1, exclude_max=True),
)
def test_any_non_finite_weight_is_refused_by_name(shape, dtype, poison, where):
    weight = torch.randn(shape).to(dtype)
    state = {"visual.conv1.weight": torch.randn(2, 2), "text_projection": weight}
    check_finite(state, "weights.pt")  # finite: accepted
    weight.view(-1)[int(where * weight.numel())] = POISONS[poison]
    with pytest.raises(CorruptWeightsError, match=r"text_projection \(1 (NaN|infinite) of"):
        check_finite(state, "weights.pt")


def test_additive_attention_masks_keep_their_minus_infinity():
    # open_clip's causal mask (0 on and below the diagonal, -inf above) travels in traced archives.
    mask = torch.full((4, 4), float("-inf")).triu(1)
    check_finite({"attn_mask": mask, "position_ids": torch.arange(4)}, "archive.pt")
    for name, bad in {
        "0-d -inf": torch.tensor(float("-inf")),  # a logit_scale of -inf is no mask
        "all -inf": torch.full((4, 4), float("-inf")),
        "NaN in a mask": mask.clone().fill_diagonal_(float("nan")),
        "+inf in a mask": -mask,
    }.items():
        with pytest.raises(CorruptWeightsError):
            check_finite({"attn_mask": bad}, name)


def test_integers_where_the_model_holds_floats_are_refused_by_name():
    own = {"proj": torch.zeros(2, 2), "num_batches_tracked": torch.tensor(0)}
    check_dtypes(own, {"proj": torch.ones(2, 2, dtype=torch.float16), "num_batches_tracked": torch.tensor(3)}, "w.pt")
    for dtype in (torch.int64, torch.int32, torch.bool, torch.uint8):
        with pytest.raises(CorruptWeightsError, match=rf"proj is {dtype}, the model's torch.float32"):
            check_dtypes(own, {"proj": torch.ones(2, 2, dtype=dtype)}, "w.pt")


def _clip_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in create_open_clip(TINY_CLIP_NAME, **TINY)[0].state_dict().items()}


@pytest.mark.parametrize("layout", ["torch.save", "safetensors", "torchscript"])
def test_read_state_dict_refuses_nan_in_every_file_format(layout, tmp_path):
    from safetensors.torch import save_file

    state = {"visual.proj": torch.randn(4, 2), "logit_scale": torch.tensor(float("nan"))}
    if layout == "torch.save":
        path = tmp_path / "w.pt"
        torch.save({"state_dict": state}, path)
    elif layout == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file(state, path)
    else:
        holder = nn.Module()
        for key, value in state.items():
            holder.register_parameter(key.replace(".", "_"), nn.Parameter(value))
        path = tmp_path / "w.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.script(holder).save(str(path))
    with pytest.raises(CorruptWeightsError, match=r"logit_scale \(1 NaN of 1 values\)"):
        read_state_dict(path)


def test_integer_clip_weights_are_refused_where_they_meet_the_model(tmp_path):
    state = _clip_state()
    state["visual.proj"] = state["visual.proj"].round().to(torch.int64)  # same shape: load_state_dict would cast it silently
    torch.save(state, tmp_path / "clip.pt")
    with pytest.raises(CorruptWeightsError, match=r"visual.proj is torch.int64, the model's torch.float32"):
        create_open_clip(TINY_CLIP_NAME, tmp_path / "clip.pt", **TINY)
    student = build_student("vclip", **tiny_build_kwargs("vclip"))
    with pytest.raises(CorruptWeightsError, match=r"visual.proj is torch.int64"):
        load_student_checkpoint(student, tmp_path / "clip.pt")


# -- through the command line, on a run froster trained ------------------------------------------

@pytest.fixture(scope="module")
def trained_weights(security_videos, tmp_path_factory):
    """``(state, metadata)`` of a 2-step ``tiny_synthetic`` run."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from froster.cli import main
    from froster.training.checkpoint import resolve_checkpoint

    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--config", "tiny_synthetic", *tiny_run_overrides(security_videos, run, "train.max_steps=2")]) == 0
    weights = resolve_checkpoint(run) / "model.safetensors"
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata()
    return load_file(str(weights)), metadata


def _corrupt(state: dict[str, torch.Tensor], how: str) -> tuple[dict[str, torch.Tensor], str]:
    state = dict(state)
    if how == "int":
        key = "student.visual.proj"
        state[key] = state[key].round().to(torch.int64)
    else:
        key = "student.visual.proj" if how == "nan" else "student.logit_scale"
        state[key] = state[key].clone()
        state[key].view(-1)[0] = float("nan") if how == "nan" else float("inf")
    return state, key


def _froster(argv: list[str], capsys) -> tuple[object, str, str]:
    """``froster`` in this process: (exit status or "raised", stdout, message)."""
    from froster.cli import main

    try:
        status = main(argv)
        message = ""
    except CorruptWeightsError as error:
        status, message = "raised", str(error)
    captured = capsys.readouterr()
    return status, captured.out, message + captured.err


@pytest.mark.parametrize(
    "how, command",
    [("nan", "eval"), ("nan", "predict --json"), ("+inf", "predict"), ("int", "eval"), ("int", "predict --json")],
)
def test_cli_gives_no_metric_from_corrupted_weights(how, command, trained_weights, security_videos, tmp_path, capsys):
    from safetensors.torch import save_file

    state, metadata = trained_weights
    corrupted, key = _corrupt(state, how)
    weights = tmp_path / "avg.safetensors"
    save_file(corrupted, weights, metadata=metadata)
    if command == "eval":
        argv = ["eval", "--checkpoint", str(weights)]
    else:
        video = security_videos / "videos" / "test" / "class_00" / "video_000.mp4"
        argv = ["predict", str(video), "--classes", str(security_videos / "classes.txt"), "--checkpoint", str(weights)]
        argv += command.split()[1:]
    status, out, message = _froster(argv, capsys)
    assert status != 0
    assert key.removeprefix("student.") in message, message
    assert out == "", "no metric, table or JSON is printed"
    assert not list(Path(tmp_path).rglob("metrics.json"))
