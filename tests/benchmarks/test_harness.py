"""The shared benchmark harness: timing statistics, peak memory, machine info, result files."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from .conftest import load_bench_module

harness = load_bench_module("_harness")


def test_time_fn_warms_up_then_times_each_step():
    calls = []
    stats = harness.time_fn(lambda: calls.append(1), warmup=2, steps=5, callback=lambda: calls.append("tick"))
    assert calls.count(1) == 7 and calls.count("tick") == 7
    assert stats["steps"] == 5
    assert 0 <= stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"] <= stats["max_ms"]


def test_time_interleaved_rotates_the_order_every_round():
    order = []
    fns = {name: (lambda n=name: order.append(n)) for name in "abc"}
    stats = harness.time_interleaved(fns, warmup=1, steps=3)
    assert order == list("abc" "bca" "cab" "abc")
    assert set(stats) == {"a", "b", "c"} and stats["a"]["steps"] == 3 and len(stats["b"]["times_ms"]) == 3


def test_ratio_stats_pairs_rounds_and_bootstraps_the_median():
    numerator = [2.0, 4.0, 9.0, 8.0, 25.0]
    denominator = [2.0, 2.0, 3.0, 2.0, 5.0]  # per-round ratios 1, 2, 3, 4, 5
    stats = harness.ratio_stats(numerator, denominator)
    assert stats["median"] == 3.0 and stats["rounds"] == 5
    assert stats["p10"] == pytest.approx(1.4) and stats["p90"] == pytest.approx(4.6)
    # The bootstrap median of 5 resampled rounds is one of the observed ratios.
    assert stats["ci90_low"] in (1.0, 2.0, 3.0) and stats["ci90_high"] in (3.0, 4.0, 5.0)
    assert harness.ratio_stats(numerator, denominator) == stats  # fixed seed
    # Not the ratio of the medians (8 / 2 = 4): each round is compared with itself.
    assert stats["median"] != pytest.approx(float(sorted(numerator)[2] / sorted(denominator)[2]))
    with pytest.raises(ValueError, match="as many"):
        harness.ratio_stats([1.0, 2.0], [1.0])


def test_summarize_percentiles():
    stats = harness.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["median_ms"] == 3.0 and stats["p90_ms"] == pytest.approx(61.6) and stats["max_ms"] == 100.0
    assert stats["p10_ms"] == pytest.approx(1.4)


def test_peak_memory_sees_a_short_lived_allocation():
    size_mb = 256
    with harness.PeakMemory("cpu") as memory:
        block = torch.ones(size_mb * 2**20 // 4)  # touched pages, so they are resident
        del block
    assert memory.method
    assert memory.peak_mb >= 0.8 * size_mb
    with harness.PeakMemory("cpu") as memory:
        pass
    assert memory.peak_mb < 0.5 * size_mb  # the peak was reset, not carried over


def test_machine_info_names_machine_and_versions():
    info = harness.machine_info("cpu")
    assert info["device"] == "cpu" and info["device_name"]
    assert info["torch"] == torch.__version__ and info["python"]
    assert info["date_utc"].endswith("Z")


def test_write_results_and_append_csv(tmp_path):
    rows = [{"name": "a", "ms": 1.5}, {"name": "b", "ms": 2.25}]
    meta = {"machine": {"device_name": "test cpu", "torch": "x"}, "settings": {"steps": 3}}
    paths = harness.write_results(rows, tmp_path, meta, columns=[("name", "name", ""), ("ms", "step ms", ".1f")])
    assert json.loads(paths["json"].read_text())["results"] == rows
    assert "| a | 1.5 |" in paths["md"].read_text() and "test cpu" in paths["md"].read_text()

    # A later row with a new key widens the file instead of dropping the key.
    harness.append_results_csv(paths["csv"], [{"name": "c", "ms": 3.0, "extra": 7}])
    with paths["csv"].open(newline="") as f:
        read = list(csv.DictReader(f))
    assert [r["name"] for r in read] == ["a", "b", "c"]
    assert read[0]["machine_device_name"] == "test cpu" and read[2]["extra"] == "7" and read[0]["extra"] == ""
