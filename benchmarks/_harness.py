"""Shared benchmark harness: timing, peak memory, machine description and result files.

Every benchmark of the repository measures through these helpers and writes its figures as data
(JSON, CSV, a markdown table) together with the machine they were measured on; plots are drawn
from those files afterwards, never from numbers held in memory.

    stats = time_fn(step, warmup=3, steps=10, sync=device_sync(device))
    timed = time_interleaved({"a": step_a, "b": step_b}, warmup=1, steps=20)
    ratio = ratio_stats(timed["b"]["times_ms"], timed["a"]["times_ms"])  # median, p10-p90, bootstrap CI
    with PeakMemory(device) as memory:
        step()
    write_results(rows, out_dir, meta={"machine": machine_info(device), "settings": {...}})
"""
from __future__ import annotations

import ctypes
import datetime as _dt
import gc
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

# The result files are written by the sibling module; importing them from here keeps one harness.
from _results import Column, Row, append_results_csv, markdown_table, write_results  # noqa: F401


# ---- timing ------------------------------------------------------------------------------------


def device_sync(device: torch.device | str) -> Callable[[], None]:
    """What to call before reading the clock: ``torch.cuda.synchronize`` on CUDA, nothing on CPU.

    CUDA kernels run asynchronously, so without a synchronisation the clock would measure the
    launch of a step, not the step.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_fn(
    fn: Callable[[], Any],
    warmup: int,
    steps: int,
    sync: Callable[[], None] = lambda: None,
    callback: Optional[Callable[[], None]] = None,
) -> dict[str, float]:
    """Time ``fn`` over ``steps`` calls after ``warmup`` untimed ones.

    Warm-up absorbs one-off costs (allocator growth, lazy optimiser state, kernel autotuning,
    cuDNN/Triton compilation) that a long training run would not pay per step.

    Args:
        fn: One step; its result is ignored.
        warmup: Untimed calls first.
        steps: Timed calls, each timed on its own between two ``sync()`` calls.
        sync: Waits for queued device work (see :func:`device_sync`).
        callback: Called after every call, warm-up included (e.g. a progress bar's update).

    Returns:
        ``median_ms``, ``p10_ms``, ``p90_ms``, ``mean_ms``, ``min_ms``, ``max_ms`` and ``steps``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    for _ in range(warmup):
        fn()
        if callback:
            callback()
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
        if callback:
            callback()
    return summarize(times)


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    warmup: int,
    steps: int,
    sync: Callable[[], None] = lambda: None,
    callback: Optional[Callable[[], None]] = None,
) -> dict[str, dict[str, Any]]:
    """Time several functions in rounds, each call timed on its own, the order rotated each round.

    On a shared or thermally throttled machine the load changes from second to second; running
    the candidates side by side exposes them to the same conditions, so their *ratio* stays
    meaningful even when each absolute time is noisy. Round r starts with candidate r mod k
    (A B C, B C A, C A B, ...), so no candidate always runs first, or always right after another.

    Returns:
        ``{name: stats}`` with the keys of :func:`summarize` and ``times_ms``, the per-round
        times in round order (for paired ratios, :func:`ratio_stats`).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + steps):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            sync()
            start = time.perf_counter()
            fns[name]()
            sync()
            if round_ >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
            if callback:
                callback()
    return {name: {**summarize(t), "times_ms": t} for name, t in times.items()}


def ratio_stats(numerator_ms: Sequence[float], denominator_ms: Sequence[float], resamples: int = 2000,
                seed: int = 0) -> dict[str, float]:
    """The ratio of two candidates timed in the same rounds, with its spread.

    Each round gives one ratio (the two steps ran seconds apart, under the same load). Reported:
    the median of the per-round ratios, their 10th and 90th percentiles, and a 90 % bootstrap
    interval of that median (rounds resampled with replacement, fixed seed).

    Returns:
        ``median``, ``p10``, ``p90``, ``ci90_low``, ``ci90_high`` and ``rounds``.
    """
    num, den = np.asarray(numerator_ms, dtype=float), np.asarray(denominator_ms, dtype=float)
    if num.shape != den.shape or num.size == 0:
        raise ValueError(f"need as many numerator as denominator times, at least one; got {num.size} and {den.size}")
    ratios = num / den
    rng = np.random.default_rng(seed)
    medians = np.median(ratios[rng.integers(0, ratios.size, size=(resamples, ratios.size))], axis=1)
    return {
        "median": float(np.median(ratios)),
        "p10": float(np.percentile(ratios, 10)),
        "p90": float(np.percentile(ratios, 90)),
        "ci90_low": float(np.percentile(medians, 5)),
        "ci90_high": float(np.percentile(medians, 95)),
        "rounds": int(ratios.size),
    }


def summarize(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, p10 and p90 (linear interpolation), mean, min and max of per-step times in ms."""
    t = np.asarray(times_ms, dtype=float)
    return {
        "median_ms": float(np.median(t)),
        "p10_ms": float(np.percentile(t, 10)),
        "p90_ms": float(np.percentile(t, 90)),
        "mean_ms": float(t.mean()),
        "min_ms": float(t.min()),
        "max_ms": float(t.max()),
        "steps": int(t.size),
    }


# ---- memory ------------------------------------------------------------------------------------


def release_host_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    Without it, memory freed by an earlier measurement stays in the process and is silently
    reused by the next one, whose RSS then grows less than it allocates.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: deltas may then be underestimated
        pass


def _read_status_kb(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _can_reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets the peak RSS (VmHWM) to the current RSS
        return _read_status_kb("VmHWM") is not None
    except OSError:
        return False


class PeakMemory:
    """Context manager measuring the peak memory of a block above what was held when it began.

    * CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the
      memory allocated at entry (tensors only; the caching allocator's reserve is not counted).
    * CPU on Linux: the kernel's peak-RSS counter ``VmHWM``, reset on entry by writing ``5`` to
      ``/proc/self/clear_refs``, minus the RSS at entry. Exact, and no thread competes with the
      measured code.
    * CPU elsewhere: RSS sampled every ``interval_s`` by a thread (psutil); misses peaks shorter
      than the interval.

    Attributes:
        baseline_mb: Memory held at entry (weights and everything built before the block).
        peak_mb: Peak during the block minus ``baseline_mb``: activations, gradients, optimiser
            state and workspace of what ran inside.
        method: How it was measured, for the result files.
    """

    def __init__(self, device: torch.device | str, interval_s: float = 0.002):
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.baseline_mb = 0.0
        self.peak_mb = 0.0
        self.method = ""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._sampled_peak = 0

    def __enter__(self) -> "PeakMemory":
        release_host_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated above allocated at start"
        elif _can_reset_hwm():
            self._baseline = _read_status_kb("VmRSS") * 1024
            self.method = "peak RSS (VmHWM reset via /proc/self/clear_refs) above RSS at start"
        else:
            import psutil

            process = psutil.Process()
            self._baseline = self._sampled_peak = process.memory_info().rss
            self.method = f"RSS sampled every {self.interval_s * 1e3:g} ms (psutil) above RSS at start"

            def sample() -> None:
                while not self._stop.wait(self.interval_s):
                    self._sampled_peak = max(self._sampled_peak, process.memory_info().rss)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        self.baseline_mb = self._baseline / 2**20
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self._thread is None:
            peak = _read_status_kb("VmHWM") * 1024
        else:
            self._stop.set()
            self._thread.join()
            peak = self._sampled_peak
        self.peak_mb = max(peak - self._baseline, 0) / 2**20


# ---- machine -----------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> Optional[str]:
    try:
        return __import__(module).__version__
    except Exception:  # absent or broken: the file says so instead of failing the benchmark
        return None


def _git_commit() -> Optional[str]:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _gpu_driver(device: torch.device) -> Optional[str]:
    """The NVIDIA driver version, from nvidia-smi; None where it cannot be read."""
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The machine, library versions and date that go with every number.

    The load average is recorded because on a shared machine it says how noisy the timings are.
    """
    device = torch.device(device)
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "driver": _gpu_driver(device) if device.type == "cuda" else None,
        "open_clip": _version("open_clip"),
        "triton": _version("triton"),
        "git_commit": _git_commit(),
    }
    if hasattr(os, "getloadavg"):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return info


def python_command() -> str:
    """The command line this process was started with, for the result files."""
    return " ".join([Path(sys.executable).name, *sys.argv])
