"""The ``froster`` command's error boundary: a user's mistake is one or two lines naming the input,
with exit status 2 (usage or config) or 1 (data or I/O); ``--debug`` shows the traceback."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from froster.cli import main
from froster.training.checkpoint import load_weights, save_weights
from froster.training.trainer import train

from .conftest import tiny_overrides


@pytest.fixture(scope="module")
def files(video_root, tmp_path_factory) -> dict[str, str]:
    """A trained tiny run and the bad inputs the cases below point at."""
    from froster.recipes import load_recipe

    tmp = tmp_path_factory.mktemp("cli_errors")
    run = tmp / "run"
    overrides = tiny_overrides(video_root, run, "schedule.epochs=1", "averaging.enabled=false", "train.eval_at_end=false")
    train(load_recipe("tiny_synthetic", overrides), resume=None)
    weights = run / "final.safetensors"
    (tmp / "not_a_video.mp4").write_text("plain text, not a video\n")
    (tmp / "not_weights.safetensors").write_text("plain text, not weights\n")
    (tmp / "truncated.safetensors").write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    state, metadata = load_weights(weights)
    state["student.positional_embedding"] = torch.zeros(3, 5)
    save_weights(tmp / "wrong_shape.safetensors", state, metadata)
    (tmp / "malformed.json").write_text('{"optim": {"lr": 1e-3,}}')
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "empty_split.txt").write_text("")
    (tmp / "label_file.json").write_text(json.dumps({"0": "Juggling: a person juggles.", "7": "Surfing: a person surfs."}))
    return {
        "run": str(run), "weights": str(weights), "tmp": str(tmp), "root": str(video_root),
        "video": str(video_root / "videos" / "test" / "class_01" / "video_000.mp4"),
        "classes": ",".join((video_root / "classes.txt").read_text().splitlines()),
    }


def _predict(files, *extra):
    return ["predict", files["video"], "--classes", files["classes"], "--checkpoint", files["weights"], *extra]


# (case, argv from the files, exit status, what the message must say)
CASES = [
    ("classes empty", lambda f: ["predict", f["video"], "--classes", "", "--checkpoint", f["weights"]], 2, "no class names in ''"),
    ("top 0", lambda f: _predict(f, "--top", "0"), 2, "argument --top: expected an integer >= 1, got '0'"),
    ("top -1", lambda f: _predict(f, "--top", "-1"), 2, "argument --top: expected an integer >= 1, got '-1'"),
    ("a directory as video", lambda f: ["predict", f["tmp"], "--classes", "a,b", "--checkpoint", f["weights"]], 1, "is a directory, not a video file"),
    ("a missing video", lambda f: ["predict", f["tmp"] + "/nope.mp4", "--classes", "a,b", "--checkpoint", f["weights"]], 1, "nope.mp4: no such file"),
    ("eval non-weights", lambda f: ["eval", "--checkpoint", f["tmp"] + "/not_weights.safetensors"], 1, "not_weights.safetensors is not a safetensors weights file"),
    ("eval truncated", lambda f: ["eval", "--checkpoint", f["tmp"] + "/truncated.safetensors"], 1, "truncated.safetensors is not a safetensors weights file"),
    ("eval wrong shape", lambda f: ["eval", "--checkpoint", f["tmp"] + "/wrong_shape.safetensors"], 1, "positional_embedding (3, 5) vs model (16, 64)"),
    ("eval --sets nosuch", lambda f: ["eval", "--checkpoint", f["weights"], "--sets", "nosuch"], 2, "--sets: unknown evaluation set(s) ['nosuch']; known: ['synthetic']"),
    ("config malformed", lambda f: ["train", "--config", f["tmp"] + "/malformed.json"], 2, "malformed.json: line 1, column 23: not valid JSON"),
    ("config not an object", lambda f: ["train", "--config", f["tmp"] + "/list.json"], 2, "expected a JSON object of config sections, got a list"),
    ("config missing", lambda f: ["train", "--config", f["tmp"] + "/missing.json"], 1, "missing.json: no such config file"),
    ("empty split", lambda f: ["train", "--config", "tiny_synthetic", *tiny_overrides(Path(f["root"]), Path(f["tmp"]) / "r2", "data.train_split=" + f["tmp"] + "/empty_split.txt")], 1, "no videos listed"),
    ("bad value", lambda f: ["train", "--config", "tiny_synthetic", "data.batch_size=0"], 2, "data.batch_size: expected an integer >= 1, got 0"),
    ("unknown student", lambda f: ["train", "--config", "tiny_synthetic", "student.name=nosuch", *tiny_overrides(Path(f["root"]), Path(f["tmp"]) / "r5")], 2, "student.name: unknown student 'nosuch'"),
    ("override read as video", lambda f: _predict(f, "data.num_test_clips=0"), 2, "data.num_test_clips: expected an integer >= 1, got 0"),
    ("summarize not metrics", lambda f: ["summarize", f["tmp"] + "/list.json"], 1, "list.json: not a froster metrics file (no 'sets' object)"),
    ("summarize not JSON", lambda f: ["summarize", f["tmp"] + "/malformed.json"], 1, "malformed.json: not a froster metrics file (not JSON"),
    ("label file keys", lambda f: ["train", "--config", "tiny_synthetic", *tiny_overrides(Path(f["root"]), Path(f["tmp"]) / "r6", "data.descriptions=" + f["tmp"] + "/label_file.json")], 1, "label_file.json: a label file keyed by class index must have the keys 0.."),
    ("resume from nowhere", lambda f: ["train", "--config", "tiny_synthetic", "--resume", f["tmp"] + "/nowhere", *tiny_overrides(Path(f["root"]), Path(f["tmp"]) / "r3")], 1, "no checkpoint at"),
]


@pytest.mark.parametrize("case, argv, status, message", CASES, ids=[c[0] for c in CASES])
def test_user_errors_are_short_messages_with_their_exit_status(files, capsys, case, argv, status, message):
    assert main(argv(files)) == status
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("froster")]) == 1, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("argv", [["--device", "cuda"], ["--device", "cuda:0"]])
def test_cuda_without_cuda_is_a_usage_error(files, capsys, argv):
    assert main(_predict(files, *argv)) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and "Traceback" not in err
    assert main(["train", "--config", "tiny_synthetic", "train.device=cuda", *tiny_overrides(Path(files["root"]), Path(files["tmp"]) / "r4")]) == 2
    assert "train.device='cuda': CUDA is not available" in capsys.readouterr().err


def test_debug_shows_the_traceback(files, capsys):
    assert main(["--debug", "eval", "--checkpoint", files["weights"], "--sets", "nosuch"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["eval", "--debug", "--checkpoint", files["weights"], "--sets", "nosuch"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_one_bad_video_does_not_stop_the_others(files, capsys):
    bad = files["tmp"] + "/not_a_video.mp4"
    assert main(_predict(files, "--json") + [bad, files["tmp"]]) == 1
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert list(printed) == [files["video"]], "the readable video is still predicted"
    assert f"{bad}: " in captured.err and "is a directory" in captured.err and "Traceback" not in captured.err
    assert "2 of 3 videos could not be read" in captured.err


def test_overrides_after_the_videos_are_overrides(files, capsys):
    from froster.evaluation.predict import predict_file
    from froster.training.build import load_trained_student

    assert main(_predict(files, "--json", "--top", "10", "data.num_test_clips=1")) == 0
    printed = json.loads(capsys.readouterr().out)[files["video"]]
    student, config = load_trained_student(files["weights"])
    names = files["classes"].split(",")
    expected = predict_file(student, files["video"], names, dataclasses.replace(config.data, num_test_clips=1))
    assert [(r["class"], r["probability"]) for r in printed] == [(c, pytest.approx(p, abs=1e-6)) for c, p in expected]
    two_clips = predict_file(student, files["video"], names, config.data)
    assert [p for _, p in two_clips] != pytest.approx([p for _, p in expected], abs=1e-6), "the override must matter"
