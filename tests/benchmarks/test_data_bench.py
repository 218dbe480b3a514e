"""benchmarks/data.py in its tiny mode: every row and file, and a baseline that decodes the same frames."""
from __future__ import annotations

import json

import pytest
import torch

from .conftest import load_bench_module

pytest.importorskip("av")


@pytest.fixture
def bench():
    threads = torch.get_num_threads()
    yield load_bench_module("data")
    torch.set_num_threads(threads)


def test_tiny_run_writes_every_backend_and_the_loader(bench, tmp_path):
    out = tmp_path / "out"
    assert bench.main(["--tiny", "--out", str(out), "--videos", str(tmp_path / "videos")]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["machine"]["device_name"] and data["machine"]["torch_threads"] == 1
    assert data["settings"]["default_backend"] in ("torchcodec", "pyav")
    assert data["videos"]["2"]["kbit_per_s"] > 0  # JSON keys are text
    decode = [r for r in data["results"] if r["kind"] == "decode"]
    backends = set(bench.backends_here())
    assert {(r["sampling"], r["backend"]) for r in decode} == {(s, b) for s in bench.SAMPLINGS for b in backends}
    for sampling in bench.SAMPLINGS:
        rate = {r["backend"]: r["clips_per_s"] for r in decode if r["sampling"] == sampling}
        default = data["settings"]["default_backend"]
        for row in (r for r in decode if r["sampling"] == sampling):
            assert row["clips_per_s"] > 0 and row["clips"] == 1
            assert row["default_over_this"] == pytest.approx(rate[default] / row["clips_per_s"])
    (loader,) = [r for r in data["results"] if r["kind"] == "loader"]
    assert loader["workers"] == 0 and loader["clips"] == 4 and loader["clips_per_s"] > 0
    assert (out / "results.csv").is_file() and "| decode | 2 | dense |" in (out / "results.md").read_text()


def test_the_baseline_decodes_the_frames_the_library_decodes(bench, tmp_path):
    """pyav_from_start is only a fair baseline if it does the same work: same frames, same indices."""
    path = bench.write_kinetics_like(tmp_path / "clip.mp4", 2, bench.TINY)
    indices = torch.tensor([[0, 5, 5, 29], [14, 15, 16, 2]])
    baseline = bench.read_pyav_from_start(str(path), lambda n, fps: indices)
    from froster.data import read_frames

    assert torch.equal(baseline, read_frames(path, lambda n, fps: indices, backend="pyav"))
    bench.check_same_frames(path, bench.backends_here())


def test_frame_mismatch_between_backends_stops_the_benchmark(bench, tmp_path, monkeypatch):
    path = bench.write_kinetics_like(tmp_path / "clip.mp4", 2, bench.TINY)
    real = bench._reader

    def shifted(backend):
        reader = real(backend)
        if backend != "pyav":
            return reader
        return lambda p, select: reader(p, lambda n, fps: (select(n, fps) + 1).clamp(max=n - 1))

    monkeypatch.setattr(bench, "_reader", shifted)
    with pytest.raises(AssertionError, match="pyav returns other frames"):
        bench.check_same_frames(path, ["pyav_from_start", "pyav"])
