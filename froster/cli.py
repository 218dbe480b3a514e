"""The ``froster`` command: train, evaluate, predict, list recipes.

::

    froster train --config k400_cross_dataset data.root=/data student.name=vclip
    torchrun --nproc_per_node 8 -m froster train --config k400_cross_dataset data.root=/data
    froster eval --checkpoint runs/k400_cross_dataset/avg.safetensors
    froster predict clip.mp4 --classes "juggling,abseiling,surfing" --checkpoint runs/x/avg.safetensors
    froster recipes                       # list; `froster recipes tiny_synthetic` prints one

Trailing ``key=value`` arguments override the recipe (dotted keys, values parsed as JSON when
they parse); see ``docs/training.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from froster.training.overrides import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="froster", description="FROSTER: distil a frozen CLIP into a video student.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a student (torchrun for several GPUs)")
    train.add_argument("--config", required=True, help="recipe name (froster recipes) or JSON file")
    train.add_argument("--resume", default="auto", help="'auto' (latest checkpoint in train.output_dir), 'none', or a checkpoint path")
    train.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.lr=3.33e-6")

    evaluate = commands.add_parser("eval", help="evaluate trained weights on the recipe's eval sets")
    evaluate.add_argument("--checkpoint", required=True, help="weights (.safetensors), checkpoint dir or run dir")
    evaluate.add_argument("--config", help="recipe or JSON file; default: the config stored with the weights")
    evaluate.add_argument("--sets", help="comma-separated subset of eval.sets")
    evaluate.add_argument("--output", help="report directory; default: <weights dir>/eval-<weights name>")
    evaluate.add_argument("overrides", nargs="*", help="dotted key=value overrides")

    predict = commands.add_parser("predict", help="zero-shot: rank any class names for video files")
    predict.add_argument("videos", nargs="+", help="video files")
    predict.add_argument("--classes", required=True, help="comma-separated class names, or a class-name file")
    predict.add_argument("--checkpoint", required=True, help="weights (.safetensors), checkpoint dir or run dir")
    predict.add_argument("--config", help="recipe or JSON file; default: the config stored with the weights")
    predict.add_argument("--top", type=int, default=5, help="classes printed per video")
    predict.add_argument("--no-ensemble", action="store_true", help="one template instead of the 29-prompt ensemble")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--device", default="auto")
    predict.add_argument("overrides", nargs="*", help="dotted key=value overrides (e.g. data.num_test_clips=1)")

    recipes = commands.add_parser("recipes", help="list the shipped recipes, or print one")
    recipes.add_argument("name", nargs="?")
    return parser


def _load_student(checkpoint: str, config_name: Optional[str], overrides: Sequence[str]):
    """The trained student and the run config.

    The architecture comes from the config stored with the weights (the weights must fit it);
    the rest (data, eval sets) from ``--config`` when given, else from the stored config, with
    the overrides applied either way. Overrides are checked before any model is built.
    """
    import dataclasses

    from froster.recipes import load_recipe
    from froster.training.build import load_trained_student, stored_run_config
    from froster.training.overrides import apply_overrides

    stored = stored_run_config(checkpoint)
    if config_name is not None:
        config = load_recipe(config_name, overrides)
    elif stored is not None:
        config = apply_overrides(stored, overrides)
    else:
        raise ConfigError(f"{checkpoint} carries no config; pass --config <recipe or JSON>")
    student, _ = load_trained_student(checkpoint, stored or config)
    frames = getattr(student, "num_frames", config.data.num_frames)
    if config.data.num_frames != frames:  # the clips must fit the student the weights belong to
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, num_frames=frames))
    return student, config


def _train(args) -> int:
    from froster.recipes import load_recipe
    from froster.training.trainer import train

    config = load_recipe(args.config, args.overrides)
    resume = None if args.resume == "none" else args.resume
    from froster import distributed as D

    info = D.init_distributed(config.train.device)
    try:
        result = train(config, resume=resume, info=info)
        if info.is_main and result.get("metrics"):
            print(_report_table(result["metrics"]), end="")
    finally:
        D.cleanup()
    return 0


def _report_table(report: dict) -> str:
    from froster.evaluation.metrics import markdown_table

    return markdown_table(report["sets"], report["groups"])


def _eval(args) -> int:
    from froster import distributed as D
    from froster.evaluation.evaluator import evaluate_run

    student, config = _load_student(args.checkpoint, args.config, args.overrides)
    path = Path(args.checkpoint)
    output = args.output or str((path.parent if path.is_file() else path) / f"eval-{path.stem}")
    sets = [s.strip() for s in args.sets.split(",")] if args.sets else None
    info = D.init_distributed(config.train.device)
    try:
        report = evaluate_run(student, config, info, output_dir=output, sets=sets, progress=config.train.progress)
        if info.is_main:
            print(_report_table(report), end="")
            print(f"report written to {output}/metrics.json and metrics.md")
    finally:
        D.cleanup()
    return 0


def _predict(args) -> int:
    from froster.distributed import resolve_device
    from froster.evaluation.predict import parse_classes, predict_file

    student, config = _load_student(args.checkpoint, args.config, args.overrides)
    classes = parse_classes(args.classes)
    device = resolve_device(args.device)
    results = {}
    for video in args.videos:
        ranked = predict_file(student, video, classes, config.data, ensemble=not args.no_ensemble, device=device)
        results[video] = ranked[: args.top]
    if args.json:
        print(json.dumps({v: [{"class": c, "probability": p} for c, p in r] for v, r in results.items()}, indent=2))
        return 0
    for video, ranked in results.items():
        print(video)
        width = max(len(name) for name, _ in ranked)
        for i, (name, prob) in enumerate(ranked, start=1):
            print(f"  {i:>2}. {name:<{width}}  {100 * prob:6.2f}%")
    return 0


def _recipes(args) -> int:
    from froster.recipes import list_recipes, load_recipe

    if args.name:
        print(load_recipe(args.name).to_json())
    else:
        print("\n".join(list_recipes()))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``froster`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    handler = {"train": _train, "eval": _eval, "predict": _predict, "recipes": _recipes}[args.command]
    from froster.data import SplitFileError

    try:
        return handler(args)
    except ConfigError as error:
        print(f"froster {args.command}: config error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, SplitFileError) as error:
        # Missing data, split or weights files: the message says which and where; no traceback.
        print(f"froster {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
