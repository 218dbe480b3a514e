"""``froster eval``: evaluate trained weights on the recipe's evaluation sets."""
from __future__ import annotations

import argparse
from pathlib import Path

from froster.cli._shared import UsageError, add_released_arguments, load_student, report_table

NAME = "eval"
HELP = "evaluate trained weights on the recipe's eval sets"
TRAILING = "overrides"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="weights (.safetensors), checkpoint dir or run dir, or a released checkpoint (with --student)")
    parser.add_argument("--config", help="recipe or JSON file; default: the config stored with the weights")
    parser.add_argument("--sets", help="comma-separated subset of eval.sets")
    parser.add_argument("--output", help="report directory; default: <weights dir>/eval-<weights name>")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    add_released_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from froster import distributed as D
    from froster.evaluation.evaluator import evaluate_run

    student, config = load_student(args.checkpoint, args.config, args.overrides, args)
    path = Path(args.checkpoint)
    output = args.output or str((path.parent if path.is_file() else path) / f"eval-{path.stem}")
    sets = _chosen_sets(args.sets, config) if args.sets is not None else None
    info = D.init_distributed(config.train.device)
    try:
        report = evaluate_run(student, config, info, output_dir=output, sets=sets, progress=config.train.progress)
        if info.is_main:
            print(report_table(report), end="")
            print(f"report written to {output}/metrics.json and metrics.md")
    finally:
        D.cleanup()
    return 0


def _chosen_sets(spec: str, config) -> list[str]:
    """The ``--sets`` names, each one of the config's eval sets."""
    names = [name.strip() for name in spec.split(",")]
    known = sorted(config.eval.sets)
    if not all(names):
        raise UsageError(f"--sets: empty set name in {spec!r}; known: {known}")
    unknown = [name for name in names if name not in config.eval.sets]
    if unknown:
        raise UsageError(f"--sets: unknown evaluation set(s) {unknown}; known: {known}")
    return names
