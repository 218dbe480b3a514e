"""benchmarks/run.py end to end on the embedded tiny CLIP: files, fields, profiles, flags, teacher modes."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import froster
from froster.teachers.module_teacher import ModuleTeacher

from .conftest import BENCH_DIR, load_bench_module

# The smallest run that still has every phase: no timing threshold is checked anywhere.
FAST = ["--steps", "2", "--warmup", "1", "--frames", "2", "--batch", "1", "--classes", "4", "--threads", "1"]
STEP_KINDS = ("student", "cached", "reference")


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _check_row(row: dict, kinds=STEP_KINDS) -> None:
    assert "error" not in row and not any(k.endswith("_error") for k in row), row
    assert row["params_total"] > 0
    assert 0 < row["params_trainable"] <= row["params_total"]
    assert row["teacher_params"] > 0 and row["projector_params"] > 0
    for key in ("student_gflops", "student_text_gflops", "teacher_gflops", "teacher_text_gflops"):
        assert row[key] > 0, key
    for kind in kinds:
        assert 0 < row[f"{kind}_step_ms"] <= row[f"{kind}_step_p90_ms"] * (1 + 1e-9), kind
        assert row[f"{kind}_peak_mb"] >= 0, kind
        if kind != "student":
            assert row[f"{kind}_overhead"] == pytest.approx(row[f"{kind}_step_ms"] / row["student_step_ms"])
            assert row[f"{kind}_overhead"] > 0
    assert row["infer_clips_per_s"] > 0
    assert row["memory_method"]


def test_one_student_writes_every_file(bench_run, tmp_path, capsys):
    name = froster.list_students()[0]
    assert bench_run.main(["--student", name, "--out", str(tmp_path), *FAST]) == 0

    data = _results(tmp_path)
    assert data["machine"]["torch"] == torch.__version__ and data["machine"]["device_name"]
    assert data["settings"]["clip"] == "tiny" and "random weights" in data["settings"]["weights"]
    (row,) = data["results"]
    assert row["student"] == name and row["device"] == "cpu"
    _check_row(row)
    assert row["reference_vs_cached"] == pytest.approx(row["reference_step_ms"] / row["cached_step_ms"])

    with (tmp_path / "results.csv").open(newline="") as f:
        (csv_row,) = list(csv.DictReader(f))
    assert csv_row["student"] == name and float(csv_row["cached_overhead"]) == pytest.approx(row["cached_overhead"])
    assert csv_row["machine_device_name"] == data["machine"]["device_name"]
    md = (tmp_path / "results.md").read_text()
    assert f"| {name} |" in md and "overhead (cached)" in md and data["machine"]["device_name"] in md
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    printed = capsys.readouterr().out
    assert "random weights" in printed and f"| {name} |" in printed

    # The plot is drawn from the data file alone, so committed results can be re-drawn.
    plot = load_bench_module("plot")
    redrawn = plot.plot_results(tmp_path / "results.json", tmp_path / "again.png")
    assert redrawn.stat().st_size > 0


def test_all_students_side_by_side(bench_run, tmp_path):
    argv = ["--student", "all", "--teacher-mode", "cached", "--out", str(tmp_path), *FAST]
    assert bench_run.main(argv) == 0
    rows = _results(tmp_path)["results"]
    assert [r["student"] for r in rows] == froster.list_students()
    for row in rows:
        _check_row(row, kinds=("student", "cached"))
        assert "reference_step_ms" not in row
    # ViFi-CLIP encodes frames exactly as the frozen CLIP teacher does: same FLOPs, whatever
    # attention path each takes (the teacher's eval-mode fast path included).
    vificlip = [r for r in rows if r["student"] == "vificlip"]
    for row in vificlip:
        assert row["student_gflops"] == pytest.approx(row["teacher_gflops"])
        assert row["student_text_gflops"] == pytest.approx(row["teacher_text_gflops"])


def test_reference_mode_reencodes_teacher_text_every_step(bench_run, tmp_path, monkeypatch):
    calls = []
    encode_text = ModuleTeacher.encode_text
    monkeypatch.setattr(ModuleTeacher, "encode_text", lambda self, tokens: calls.append(len(tokens)) or encode_text(self, tokens))
    warmup, steps = 2, 3
    argv = ["--student", froster.list_students()[0], "--out", str(tmp_path), *FAST, "--warmup", str(warmup), "--steps", str(steps)]
    assert bench_run.main(argv) == 0

    (row,) = _results(tmp_path)["results"]
    assert row["reference_text_encodes"] == warmup + steps  # every distilled step, all classes
    assert row["cached_text_encodes"] == 1  # once for the prompt set
    # One more call counts the teacher's text FLOPs; each call encodes all K = 4 classes.
    assert len(calls) == 1 + 1 + warmup + steps and set(calls) == {4}


def test_profile_writes_a_tensorboard_trace_per_student(bench_run, tmp_path, capsys):
    name = froster.list_students()[0]
    argv = ["--student", name, "--teacher-mode", "cached", "--profile", "--profile-steps", "1", "--out", str(tmp_path), *FAST]
    assert bench_run.main(argv) == 0
    traces = sorted((tmp_path / "profile" / name).glob("*.pt.trace.json*"))
    assert {t.name.split(".")[0] for t in traces} == {"student", "distilled-cached"}
    assert json.loads(traces[0].read_text())["traceEvents"]
    assert f"tensorboard --logdir {tmp_path / 'profile'}" in capsys.readouterr().out


BAD_FLAGS = [
    (["--student", "no-such-student"], "--student"),
    (["--frames", "0"], "--frames"),
    (["--batch", "0"], "--batch"),
    (["--classes", "0"], "--classes"),
    (["--warmup", "0"], "--warmup"),
    (["--image-size", "40"], "--image-size"),  # the tiny config's patches are 16 px
    (["--device", "cpu", "--dtype", "fp16"], "--dtype"),
    (["--device", "tpu"], "--device"),
    (["--clip", "ViT-No-Such"], "--clip"),
    (["--clip", "ViT-B-16", "--pretrained", "no-such-tag"], "--pretrained"),
    (["--pretrained", "openai"], "--pretrained"),  # the tiny config has no weights
]


@pytest.mark.parametrize("argv, flag", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flag_exits_2_naming_it(bench_run, argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_run.main(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_unknown_student_lists_the_known_ones(bench_run, capsys):
    with pytest.raises(SystemExit):
        bench_run.main(["--student", "no-such-student"])
    err = capsys.readouterr().err
    assert all(name in err for name in froster.list_students())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_cuda_exits_2(bench_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_run.main(["--device", "cuda"])
    assert exit_info.value.code == 2 and "--device cuda" in capsys.readouterr().err


def test_runs_as_a_script_from_the_repository_root():
    # `python benchmarks/run.py` must find its sibling modules without any install.
    done = subprocess.run([sys.executable, str(BENCH_DIR / "run.py"), "--batch", "0"], cwd=BENCH_DIR.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--batch must be >= 1" in done.stderr
