"""torchrun + DDP on the CPU (gloo): 2 processes train, and evaluate to the same metrics as 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from froster.evaluation.evaluator import evaluate_run
from froster.training.build import load_trained_student

from .conftest import tiny_overrides


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_metrics(video_root, tmp_path):
    # 3 test videos: the ranks get 2 and 1 (a padding sampler would count one twice).
    test_split = tmp_path / "test3.txt"
    test_split.write_text("\n".join((video_root / "test.txt").read_text().splitlines()[:3]) + "\n")
    out = tmp_path / "ddp_run"
    overrides = tiny_overrides(video_root, out, f"eval.sets.synthetic.split={test_split}", "eval.batch_size=2")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "froster", "train", "--config", "tiny_synthetic", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # 8 training videos, 4 per process and step: one step per epoch, summaries from rank 0 only.
    summaries = [line for line in run.stdout.splitlines() if line.startswith("epoch ")]
    assert len(summaries) == 2 and all("1 steps" in line for line in summaries), run.stdout
    two = json.loads((out / "metrics.json").read_text())["sets"]["synthetic"]
    assert two["num_videos"] == 3

    student, config = load_trained_student(out / "avg.safetensors")
    one = evaluate_run(student, config)["sets"]["synthetic"]
    for key in ("num_videos", "skipped", "top1", "top5", "mean_class_accuracy", "per_class"):
        assert one[key] == two[key], key
