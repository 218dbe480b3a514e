"""benchmarks/gpu_suite.py: its CPU mode end to end (so the GPU run cannot rot), its plan and limits."""
from __future__ import annotations

import csv
import json
import re
import sys
import time
from pathlib import Path

import torch

from .conftest import load_bench_module

suite = load_bench_module("gpu_suite")


def test_cpu_mode_runs_every_stage_and_names_the_machine(tmp_path):
    assert suite.main(["--device", "cpu", "--results-root", str(tmp_path)]) == 0
    (out,) = tmp_path.iterdir()
    environment = json.loads((out / "environment.json").read_text())
    assert out.name == f"{suite.slug(environment['device_name'])}-{environment['date_utc'][:10]}"
    assert environment["torch"] == torch.__version__ and environment["triton"] and environment["device"] == "cpu"
    assert "torch==" in (out / "pip-freeze.txt").read_text()

    ran = json.loads((out / "suite.json").read_text())
    assert [r["stage"] for r in ran["results"]] == ["tests", "kernel", "students", "parity"]
    assert all(r["returncode"] == 0 and not r["timed_out"] for r in ran["results"]), ran["results"]
    assert 'failures="0"' in (out / "tests" / "junit.xml").read_text()
    with (out / "kernel" / "kernel.csv").open(newline="") as f:
        (kernel_row,) = list(csv.DictReader(f))
    assert float(kernel_row["eager_ms"]) > 0 and kernel_row["device_name"] == environment["device_name"]
    (student_row,) = json.loads((out / "students" / "results.json").read_text())["results"]
    assert student_row["cached_overhead"] > 0
    parity = json.loads((out / "parity" / "parity.json").read_text())
    assert parity["max_rel_diff_loss"] < 1e-4  # fp32, one step: triton and torch agree


def test_cuda_plan_fits_in_eight_minutes_and_downloads_nothing(capsys):
    assert suite.main(["--device", "cuda", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["total_limit_s"] <= suite.BUDGET_S == 480
    assert [s["name"] for s in plan["stages"]] == ["tests", "kernel", "students", "parity"]
    students = plan["stages"][2]["command"]
    assert "--pretrained" not in students and students[students.index("--clip") + 1] == "ViT-B-16"
    assert all("--device" not in s["command"] or "cuda" in s["command"] for s in plan["stages"])
    env = suite.stage_env("cuda")
    assert env["HF_HUB_OFFLINE"] == "1" and "TRITON_INTERPRET" not in env


def test_results_folders_are_never_overwritten(tmp_path):
    first = suite.results_dir(tmp_path, "NVIDIA H200", "2026-12-01")
    assert first.name == "nvidia-h200-2026-12-01"
    first.mkdir()
    assert suite.results_dir(tmp_path, "NVIDIA H200", "2026-12-01").name == "nvidia-h200-2026-12-01-2"


def test_a_stage_past_its_limit_is_killed_with_its_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    grandchild = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    child = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(60)"
    result = suite.run_stage(suite.Stage("sleepy", ["-c", child], 3), tmp_path, suite.stage_env("cpu"))
    assert result["timed_out"] and result["seconds"] < 30
    assert re.match(rf"{re.escape(sys.executable)} -c ", result["command"])
    pid = int(pid_file.read_text())
    for _ in range(50):  # the grandchild went down with its process group (gone, or a zombie)
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "State:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"process {pid} of the killed stage is still running")
