"""benchmarks/run.py end to end on the embedded tiny CLIP: files, fields, profiles, flags, teacher modes."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

import froster
from froster.teachers.module_teacher import ModuleTeacher

from .conftest import BENCH_DIR, load_bench_module

# The smallest run that still has every phase: no timing threshold is checked anywhere.
FAST = ["--steps", "2", "--warmup", "1", "--frames", "2", "--batch", "1", "--classes", "4", "--threads", "1",
        "--memory", "inline"]
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
        assert 0 < row[f"{kind}_step_p10_ms"] <= row[f"{kind}_step_ms"] <= row[f"{kind}_step_p90_ms"] * (1 + 1e-9), kind
        assert row[f"{kind}_peak_mb"] >= 0, kind
        if kind != "student":
            # The median of per-round ratios, each round's distilled step over that round's student step.
            ratios = sorted(a / b for a, b in zip(row[f"{kind}_times_ms"], row["student_times_ms"]))
            assert row[f"{kind}_overhead"] == pytest.approx((ratios[(len(ratios) - 1) // 2] + ratios[len(ratios) // 2]) / 2)
            assert row[f"{kind}_overhead_ci90_low"] <= row[f"{kind}_overhead"] <= row[f"{kind}_overhead_ci90_high"]
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
    assert row["reference_vs_cached_p10"] <= row["reference_vs_cached"] <= row["reference_vs_cached_p90"]
    assert data["settings"]["measured_modes"] == ["reference", "cached"]  # the others coincide on CPU
    assert data["settings"]["merged_modes"] == {"cached": ["text_cache", "half_teacher"]}

    with (tmp_path / "results.csv").open(newline="") as f:
        (csv_row,) = list(csv.DictReader(f))
    assert csv_row["student"] == name and float(csv_row["cached_overhead"]) == pytest.approx(row["cached_overhead"])
    assert json.loads(csv_row["student_times_ms"]) == pytest.approx(row["student_times_ms"])
    assert csv_row["machine_device_name"] == data["machine"]["device_name"]
    md = (tmp_path / "results.md").read_text()
    assert f"| {name} |" in md and "overhead (cached)" in md and data["machine"]["device_name"] in md
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    printed = capsys.readouterr().out
    assert "random weights" in printed and f"| {name} |" in printed
    assert f"{name} cached_overhead: " in printed and "90% CI of the median" in printed
    assert "text_cache, half_teacher are the same step as cached" in printed

    # The plot is drawn from the data file alone, so committed results can be re-drawn.
    plot = load_bench_module("plot")
    redrawn = plot.plot_results(tmp_path / "results.json", tmp_path / "again.png")
    assert redrawn.stat().st_size > 0


def test_all_students_side_by_side(bench_run, tmp_path):
    argv = ["--student", "all", "--modes", "cached", "--out", str(tmp_path), *FAST]
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


def test_reference_mode_tokenizes_and_encodes_both_prompt_sets_every_step(bench_run, tmp_path, monkeypatch):
    """The released protocol per step: a random template and the bare entry, each encoded by the teacher."""
    encoded = []
    encode_text = ModuleTeacher.encode_text
    monkeypatch.setattr(ModuleTeacher, "encode_text", lambda self, tokens: encoded.append(tokens.clone()) or encode_text(self, tokens))
    steps = 3
    argv = ["--student", froster.list_students()[0], "--out", str(tmp_path), *FAST, "--steps", str(steps)]
    assert bench_run.main(argv) == 0

    (row,) = _results(tmp_path)["results"]
    assert row["reference_text_encodes"] == 2 * steps  # during the timed steps: two prompt sets each
    assert row["cached_text_encodes"] == 0  # every prompt set was encoded before timing
    # Every encoded set was one of the 29 sets of the protocol (4 classes each).
    assert {len(t) for t in encoded} == {4}
    counts = Counter(tuple(map(tuple, t.tolist())) for t in encoded)
    assert len(counts) <= 29
    # The bare entries are in every step's pair, and the reference mode encoded them on each of its
    # steps: the memory step and its warm-up, the timing warm-up, the timed steps. A cache would
    # have encoded them once per distiller (twice per mode here).
    reference_steps = 1 + 1 + 1 + steps
    assert counts.most_common(1)[0][1] >= reference_steps


def test_prompt_stream_follows_the_released_protocol():
    steps_module = load_bench_module("_training_steps")
    classes = steps_module.bench_classes(3)
    first, second = steps_module.PromptStream(classes, seed=5), steps_module.PromptStream(classes, seed=5)
    sets = [first.next() for _ in range(6)]
    assert sets == [second.next() for _ in range(6)]  # every kind of step sees the same templates
    for template_set, bare in sets:
        assert bare == [f"{c.name}: {c.description}" for c in classes]
        assert all(p.endswith(f"{c.name}: {c.description}") and p != bare[i] for i, (p, c) in enumerate(zip(template_set, classes)))
    assert len({tuple(t) for t, _ in sets}) > 1  # the template is drawn anew


def test_modes_that_coincide_on_a_device_are_measured_once():
    bench = load_bench_module("students_bench")
    cpu, cuda = bench.BenchSettings(device="cpu"), bench.BenchSettings(device="cuda")
    assert cpu.modes() == ("reference", "cached") and cpu.merged_modes() == {"cached": ["text_cache", "half_teacher"]}
    assert cuda.modes() == ("reference", "text_cache", "half_teacher", "cached") and cuda.merged_modes() == {}
    assert bench.BenchSettings(device="cpu", teacher_modes=("text_cache",)).modes() == ("text_cache",)
    assert cpu.memory_method() == "process" and cuda.memory_method() == "inline"


def test_isolated_memory_puts_each_distilled_peak_at_or_above_the_students(bench_run, tmp_path):
    """Each kind's peak in a fresh process: a distilled step does all a student step does, and more."""
    argv = ["--student", "vclip", "--modes", "cached", "--out", str(tmp_path), *FAST, "--memory", "process"]
    assert bench_run.main(argv) == 0
    (row,) = _results(tmp_path)["results"]
    assert row["memory_method"] == "process"
    assert row["student_peak_mb"] > 10  # weights' gradients and AdamW state at least
    # RSS moves in pages and one-off allocations; 2 MB of slack on a ~60 MB peak.
    assert row["cached_peak_mb"] >= row["student_peak_mb"] - 2


def test_profile_writes_a_tensorboard_trace_per_student(bench_run, tmp_path, capsys):
    name = froster.list_students()[0]
    argv = ["--student", name, "--modes", "cached", "--profile", "--profile-steps", "1", "--out", str(tmp_path), *FAST]
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
    (["--modes", "reference,fastest"], "--modes"),
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
