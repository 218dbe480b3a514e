"""Recipes, dotted overrides and their errors."""
from __future__ import annotations

import pytest

from froster.cli import main
from froster.config import DistillConfig
from froster.recipes import list_recipes, load_recipe
from froster.training.configs import EvalSetConfig, RunConfig
from froster.training.overrides import ConfigError, apply_override


def test_shipped_recipes_load_and_round_trip():
    assert {"k400_cross_dataset", "base_to_novel", "tiny_synthetic"} <= set(list_recipes())
    for name in list_recipes():
        config = load_recipe(name)
        assert RunConfig.from_json(config.to_json()) == config


def test_paper_recipe_values():
    c = load_recipe("k400_cross_dataset")
    assert (c.student.clip, c.data.num_frames, c.data.image_size, c.data.num_test_clips) == ("ViT-B-16", 8, 224, 3)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.decay_1d, c.optim.grad_clip) == (3.33e-6, 0.01, False, 1.0)
    assert (c.schedule.epochs, c.schedule.warmup_epochs, c.train.precision) == (22, 2.0, "bf16")
    assert (c.averaging.enabled, c.averaging.start_epoch, c.averaging.end_epoch) == (True, 2, 22)
    assert {s.group for s in c.eval.sets.values()} == {"ucf101", "hmdb51", "k600"}
    b = load_recipe("base_to_novel")
    assert (b.data.shots_per_class, b.schedule.epochs) == (16, 12)
    assert all(s.base_classes for s in b.eval.sets.values())


def test_overrides_parse_values_by_type():
    c = load_recipe("k400_cross_dataset", [
        "data.root=/data/k400", "student.name=vclip", "optim.lr=3.33e-6", "data.short_side=[256, 320]",
        "distill.kind=l2", "student.clip_overrides.vision_cfg.width=128", "averaging.end_epoch=null",
        "eval.sets.ucf101_split1.root=/data/ucf101",
    ])
    assert c.data.root == "/data/k400" and c.optim.lr == 3.33e-6 and c.data.short_side == (256, 320)
    assert isinstance(c.distill, DistillConfig) and c.distill.kind == "l2"
    assert c.student.clip_overrides == {"vision_cfg": {"width": 128}}
    assert c.averaging.end_epoch is None and c.eval.sets["ucf101_split1"].root == "/data/ucf101"
    added = apply_override(c, 'eval.sets.mine={"split": "a.txt", "class_names": "b.txt"}')
    assert added.eval.sets["mine"] == EvalSetConfig(split="a.txt", class_names="b.txt")


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "known keys of optim: ['betas', 'decay_1d', 'eps', 'grad_clip', 'lr', 'weight_decay']"),
        ("nonsense.x=1", "known keys of RunConfig"),
        ("optim.lr=fast", "optim.lr: expected a number"),
        ("data.num_frames=2.5", "data.num_frames: expected an integer"),
        ("train.precision=fp16", "'fp16' is not one of ['bf16', 'fp32']"),
        ("distill.kind=huber", "distill.kind: 'huber' is not one of ['cosine', 'l2']"),
        ("distill.beta=-1", "distill.beta: expected a finite number >= 0, got -1.0"),
        ("distill.alphaa=0.1", "known keys of distill"),
        ("eval.sets.nope.root=/x", "entries of eval.sets"),
        ("optim.lr.x=1", "optim.lr is a single value"),
        ("optim.lr", "key=value"),
    ],
)
def test_override_errors_name_the_known_keys(override, message):
    with pytest.raises(ConfigError) as error:
        load_recipe("tiny_synthetic", [override])
    assert message in str(error.value)


def test_cli_reports_config_errors(capsys, tmp_path):
    assert main(["train", "--config", "tiny_synthetic", "optim.lrr=1"]) == 2
    assert "known keys of optim" in capsys.readouterr().err
    assert main(["train", "--config", "no_such_recipe"]) == 2
    assert "shipped recipes" in capsys.readouterr().err
    assert main(["train", "--config", "k400_cross_dataset", f"train.output_dir={tmp_path / 'run'}"]) == 1
    assert "set data.root=" in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert main(["recipes"]) == 0
    assert "k400_cross_dataset" in capsys.readouterr().out
