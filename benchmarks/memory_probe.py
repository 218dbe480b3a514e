"""Peak memory of one kind of training step, measured in a process of its own.

Run by `benchmarks/students_bench.py` (``--memory process``), not by hand::

    python benchmarks/memory_probe.py --student vclip --kind cached --settings '{"clip": "tiny", ...}'

Builds the student, the one teacher that kind needs and the step, runs the warm-up steps under
:class:`_harness.PeakMemory` and prints one JSON line: ``peak_mb``, ``baseline_mb``, ``method``.
A fresh process holds nothing that an earlier measurement freed, so its peak RSS is the step's own.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from students_bench import BenchSettings, build_steps, peak_of, teacher_pool  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", required=True)
    parser.add_argument("--kind", required=True, help="student or a distilled mode")
    parser.add_argument("--settings", required=True, help="BenchSettings.to_dict() as JSON")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (run.py passes its own)")
    args = parser.parse_args(argv)
    settings = BenchSettings.from_dict(json.loads(args.settings))
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = build_steps(args.student, settings, teacher_pool(settings))
    if args.kind != "student":
        steps.teachers.get(steps.teacher_precision(args.kind))  # built before the baseline is taken
    memory = peak_of(steps, args.kind, settings.warmup)
    print(json.dumps({"peak_mb": memory.peak_mb, "baseline_mb": memory.baseline_mb, "method": memory.method}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
