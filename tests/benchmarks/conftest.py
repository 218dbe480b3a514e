"""Load the benchmark scripts, which live in `benchmarks/` as scripts rather than as a package."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def load_bench_module(name: str):
    """Import ``benchmarks/<name>.py`` the way ``python benchmarks/run.py`` does."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    module_name = f"froster_benchmarks_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, BENCH_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture
def bench_run():
    """benchmarks/run.py as a module; restores the torch thread count its ``--threads`` changes."""
    threads = torch.get_num_threads()
    yield load_bench_module("run")
    torch.set_num_threads(threads)
