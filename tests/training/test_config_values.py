"""Config values are checked when the config is parsed, before anything is built."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from froster.config import DistillConfig
from froster.recipes import load_recipe
from froster.training.configs import RunConfig
from froster.training.overrides import ConfigError


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.num_frames=0", "data.num_frames: expected an integer >= 1, got 0"),
        ("data.batch_size=-2", "data.batch_size: expected an integer >= 1, got -2"),
        ("data.image_size=0", "data.image_size: expected an integer >= 1"),
        ("data.num_test_clips=0", "data.num_test_clips: expected an integer >= 1"),
        ("data.stride=0", "data.stride: expected an integer >= 1"),
        ("data.num_workers=-1", "data.num_workers: expected an integer >= 0"),
        ("data.shots_per_class=0", "data.shots_per_class: expected an integer >= 1"),
        ("data.short_side=[40,32]", "data.short_side: expected an increasing (min, max) pair of integers >= 1, got (40, 32)"),
        ("data.synthetic.size=0", "data.synthetic.size: expected an even integer >= 2"),
        ("eval.batch_size=0", "eval.batch_size: expected an integer >= 1"),
        ("schedule.epochs=0", "schedule.epochs: expected an integer >= 1"),
        ("schedule.warmup_epochs=-1", "schedule.warmup_epochs: expected a finite number >= 0"),
        ("schedule.warmup_start_factor=1.5", "schedule.warmup_start_factor: expected a number in [0, 1]"),
        ("schedule.final_factor=-0.1", "schedule.final_factor: expected a number in [0, 1]"),
        ("train.log_every_steps=0", "train.log_every_steps: expected an integer >= 1"),
        ("train.checkpoint_every_steps=0", "train.checkpoint_every_steps: expected an integer >= 1"),
        ("train.keep_checkpoints=0", "train.keep_checkpoints: expected an integer >= 1"),
        ("train.max_steps=-1", "train.max_steps: expected an integer >= 0"),
        ("optim.lr=0", "optim.lr: expected a finite number > 0, got 0.0"),
        ("optim.lr=-1e-5", "optim.lr: expected a finite number > 0"),
        ("optim.lr=NaN", "optim.lr: expected a number, got 'NaN'"),
        ("optim.lr=Infinity", "optim.lr: expected a number, got 'Infinity'"),
        ("optim.weight_decay=-0.1", "optim.weight_decay: expected a finite number >= 0"),
        ("optim.eps=0", "optim.eps: expected a finite number > 0"),
        ("optim.betas=[0.9,1.0]", "optim.betas: expected two numbers in [0, 1)"),
        ("optim.grad_clip=0", "optim.grad_clip: expected a finite number > 0 or null"),
        ("distill.beta=-1", "distill.beta: expected a finite number >= 0, got -1.0"),
        ("distill.alpha=-0.5", "distill.alpha: expected a finite number >= 0"),
        ("distill.hidden_dim=0", "distill.hidden_dim: expected an integer >= 1"),
        ("patching.ratio=1.5", "patching.ratio: expected a number in [0, 1]"),
        ("averaging.start_epoch=0", "averaging.start_epoch: expected an integer >= 1"),
        ("averaging.end_epoch=0", "averaging.end_epoch: expected an integer >= averaging.start_epoch (1)"),
    ],
)
def test_bad_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        load_recipe("tiny_synthetic", [override])
    assert message in str(error.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_configs_with_nan_or_infinity_are_refused(tmp_path, constant):
    text = load_recipe("tiny_synthetic").to_json().replace('"lr": 0.0003', f'"lr": {constant}')
    assert constant in text
    path = tmp_path / "recipe.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{path}: line \d+, column \d+: {constant} is not a number JSON allows"):
        load_recipe(str(path))
    with pytest.raises(ConfigError, match=f"{constant} is not a number JSON allows"):
        RunConfig.from_json(text)
    with pytest.raises(ConfigError, match=f"{constant} is not a number JSON allows"):
        DistillConfig.from_json(f'{{"beta": {constant}}}')


@pytest.mark.parametrize(
    "text, message",
    [("{bad", r"line 1, column 2: not valid JSON"), ("[1, 2]", "expected a JSON object of config sections, got a list"),
     ('"k400"', "expected a JSON object of config sections, got a str")],
)
def test_malformed_or_non_object_config_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / "recipe.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(str(path))


def test_a_section_that_is_not_an_object_is_named():
    with pytest.raises(ConfigError, match="optim: expected a mapping of OptimConfig fields, got 3"):
        RunConfig.from_dict({"optim": 3})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": float("nan")}, "beta: expected a finite number >= 0, got nan"),
        ({"beta": float("inf")}, "beta: expected a finite number >= 0, got inf"),
        ({"alpha": float("nan")}, "alpha: expected a finite number >= 0, got nan"),
        ({"alpha": "0.1"}, "alpha: expected a finite number >= 0, got '0.1'"),
        ({"hidden_dim": 2.5}, "hidden_dim: expected an integer >= 1 or null, got 2.5"),
        ({"student_dim": True}, "student_dim: expected an integer >= 1 or null, got True"),
        ({"distill_video": "no"}, "distill_video: expected true or false, got 'no'"),
    ],
)
def test_distill_config_and_distiller_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DistillConfig(**kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        DistillConfig().replace(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(allow_nan=True, allow_infinity=True),
    beta=st.floats(allow_nan=True, allow_infinity=True),
    frames=st.integers(-3, 40),
)
def test_a_parsed_config_only_holds_values_in_range(lr, beta, frames):
    """Property: whatever numbers come, the config either refuses them or holds usable ones."""
    try:
        config = load_recipe("tiny_synthetic", [f"optim.lr={lr!r}", f"distill.beta={beta!r}", f"data.num_frames={frames}"])
    except ConfigError:
        assert not (math.isfinite(lr) and lr > 0 and math.isfinite(beta) and beta >= 0 and frames >= 1)
        return
    assert math.isfinite(config.optim.lr) and config.optim.lr > 0
    assert math.isfinite(config.distill.beta) and config.distill.beta >= 0
    assert config.data.num_frames >= 1
