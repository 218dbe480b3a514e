"""Everything that needs a GPU, in one command that fits in 8 minutes on one H100/H200.

    python benchmarks/gpu_suite.py                  # on a CUDA machine: results/<gpu>-<date>/
    python benchmarks/gpu_suite.py --dry-run        # print the plan, run nothing
    python benchmarks/gpu_suite.py --device cpu     # the same stages at toy sizes on CPU (CI)

Stages, each a subprocess with its own time limit (killed at the limit; the next stage still runs):

1. ``tests``: the kernel tests compiled on CUDA (no interpreter) and the CUDA-only tests.
2. ``kernel``: benchmarks/kernel.py, eager vs ``torch.compile`` vs Triton (fused and GEMM path),
   forward+backward, N in {512, 64, 400, 4096}, D = H in {512, 768}, bf16 and fp16, with peak
   memory and the fraction of the roofline bound; stops starting cases when its budget is spent.
3. ``students``: benchmarks/run.py, every student at ViT-B/16 sizes (random weights), T=8, B=4,
   K=400, bf16, every distilled mode.
4. ``parity``: benchmarks/impl_parity.py, 300 steps of ``ResidualDistiller`` with
   ``impl="triton"`` and with ``impl="torch"`` from one seed, losses compared step by step.

The limits of :data:`CUDA_STAGES` add up to at most :data:`BUDGET_S` (a test checks the sum).
Nothing is downloaded: every model is built from open_clip's configs with random weights, and the
Hugging Face hub is set offline. Results go to ``<results-root>/<device>-<date>/`` (UTC date): one
folder per stage, each stage's log, ``environment.json`` (device, driver, CUDA, torch, Triton and
open_clip versions, commit), ``nvidia-smi.txt``, ``pip-freeze.txt`` and ``suite.json`` (what ran,
exit codes, seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
BUDGET_S = 480


@dataclass
class Stage:
    """One subprocess of the suite; ``{out}`` in the command is the results folder."""

    name: str
    command: list[str]
    limit_s: int


CUDA_STAGES = [
    Stage("tests", ["-m", "pytest", "tests/ops", "-q", "-n", "4", "-p", "no:cacheprovider",
                    "--junitxml", "{out}/tests/junit.xml"], 110),
    Stage("kernel", [str(BENCH / "kernel.py"), "--device", "cuda", "--out", "{out}/kernel/kernel.csv",
                     "--time-budget-s", "130"], 160),
    Stage("students", [str(BENCH / "run.py"), "--student", "all", "--clip", "ViT-B-16", "--frames", "8", "--batch", "4",
                       "--classes", "400", "--device", "cuda", "--dtype", "bf16", "--warmup", "2", "--steps", "10",
                       "--memory", "inline", "--out", "{out}/students"], 150),
    Stage("parity", [str(BENCH / "impl_parity.py"), "--device", "cuda", "--steps", "300", "--out", "{out}/parity"], 50),
]
# The same stages at toy sizes, to run anywhere in about a minute.
CPU_STAGES = [
    Stage("tests", ["-m", "pytest", "tests/ops/test_triton_launches.py", "-q", "-p", "no:cacheprovider", "-k", "Dispatch",
                    "--junitxml", "{out}/tests/junit.xml"], 240),
    Stage("kernel", [str(BENCH / "kernel.py"), "--device", "cpu", "--no-compile", "--quick", "--ns", "16", "--ds", "32",
                     "--threads", "1", "--out", "{out}/kernel/kernel.csv"], 240),
    Stage("students", [str(BENCH / "run.py"), "--student", "vclip", "--frames", "2", "--batch", "1", "--classes", "4",
                       "--device", "cpu", "--warmup", "1", "--steps", "2", "--memory", "inline", "--modes", "cached",
                       "--threads", "1", "--out", "{out}/students"], 240),
    Stage("parity", [str(BENCH / "impl_parity.py"), "--device", "cpu", "--steps", "1", "--embed-dim", "32", "--batch", "1",
                     "--frames", "2", "--classes", "2", "--out", "{out}/parity"], 240),
]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def results_dir(root: Path, device_name: str, date: str) -> Path:
    """``<root>/<device>-<date>/``, with ``-2``, ``-3``, ... when that folder exists: nothing is overwritten."""
    base = root / f"{slug(device_name)}-{date}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def run_stage(stage: Stage, out: Path, env: dict) -> dict:
    """Run one stage, its output into ``<out>/<stage>.log``; at its limit the whole process group dies."""
    command = [sys.executable, *(part.replace("{out}", str(out)) for part in stage.command)]
    (out / stage.name).mkdir(parents=True, exist_ok=True)
    log = out / f"{stage.name}.log"
    started = time.monotonic()
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code, timed_out = process.wait(timeout=stage.limit_s), False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code, timed_out = process.wait(), True
    seconds = time.monotonic() - started
    return {"stage": stage.name, "command": " ".join(command), "limit_s": stage.limit_s, "seconds": round(seconds, 1),
            "returncode": code, "timed_out": timed_out, "log": log.name}


def stage_env(device: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if device == "cuda":
        env.pop("TRITON_INTERPRET", None)  # the kernels compiled for the GPU, never interpreted
    else:
        env["TRITON_INTERPRET"] = "1"
    return env


def record_environment(out: Path, info: dict) -> None:
    """Write ``info`` to environment.json, with nvidia-smi.txt and pip-freeze.txt beside it."""
    (out / "environment.json").write_text(json.dumps(info, indent=2) + "\n")
    for name, command in (("nvidia-smi.txt", ["nvidia-smi"]), ("pip-freeze.txt", [sys.executable, "-m", "pip", "freeze"])):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
            (out / name).write_text(done.stdout + done.stderr)
        except (OSError, subprocess.SubprocessError) as error:
            (out / name).write_text(f"not available: {error}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument("--device", default=None, choices=["cuda", "cpu"], help="default: cuda when available, else cpu")
    parser.add_argument("--dry-run", action="store_true", help="print the stages, their commands and limits; run nothing")
    parser.add_argument("--results-root", type=Path, default=BENCH / "results")
    parser.add_argument("--stages", default=None, help="comma-separated subset of tests,kernel,students,parity")
    args = parser.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available() and not args.dry_run:
        parser.error("--device cuda but no CUDA device is available (--dry-run prints the plan anywhere)")
    stages = CUDA_STAGES if device == "cuda" else CPU_STAGES
    if args.stages:
        wanted = [s.strip() for s in args.stages.split(",")]
        unknown = [s for s in wanted if s not in {stage.name for stage in stages}]
        if unknown:
            parser.error(f"--stages: unknown {unknown}; stages are {', '.join(s.name for s in stages)}")
        stages = [s for s in stages if s.name in wanted]
    total = sum(s.limit_s for s in stages)
    plan = {"device": device, "stages": [asdict(s) for s in stages], "total_limit_s": total}
    if args.dry_run:
        print(json.dumps(plan, indent=2))
        return 0

    from _harness import machine_info

    info = machine_info(device)
    name = info["device_name"]
    out = results_dir(args.results_root, name, info["date_utc"][:10])  # the date environment.json records
    out.mkdir(parents=True)
    record_environment(out, info)
    print(f"{name}: driver {info.get('driver')}, CUDA {info.get('cuda')}, torch {info['torch']}, triton {info['triton']}; "
          f"{len(stages)} stages, at most {total} s; results in {out}", flush=True)
    results = []
    for stage in stages:
        result = run_stage(stage, out, stage_env(device))
        results.append(result)
        status = "timed out" if result["timed_out"] else f"exit {result['returncode']}"
        print(f"{stage.name}: {status} after {result['seconds']} s (limit {stage.limit_s} s); log {out / result['log']}", flush=True)
        (out / "suite.json").write_text(json.dumps({**plan, "environment": info, "results": results}, indent=2) + "\n")
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
