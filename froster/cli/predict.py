"""``froster predict``: zero-shot, rank any class names for video files."""
from __future__ import annotations

import argparse
import json
import sys

from froster.cli._shared import UsageError, add_released_arguments, load_student, positive_int, split_overrides

NAME = "predict"
HELP = "zero-shot: rank any class names for video files"
TRAILING = "inputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # One positional list: argparse cannot tell `clip.mp4 data.num_test_clips=1` apart by itself;
    # split_overrides does (section.key=value is an override wherever it stands).
    parser.add_argument("inputs", nargs="+", metavar="VIDEO_OR_OVERRIDE",
                        help="video files, and dotted key=value overrides (e.g. data.num_test_clips=1)")
    parser.add_argument("--classes", required=True, help="comma-separated class names, or a class-name file")
    parser.add_argument("--checkpoint", required=True, help="weights (.safetensors), checkpoint dir or run dir, or a released checkpoint (with --student)")
    parser.add_argument("--config", help="recipe or JSON file; default: the config stored with the weights")
    parser.add_argument("--top", type=positive_int, default=5, help="classes printed per video (>= 1)")
    parser.add_argument("--no-ensemble", action="store_true", help="one template instead of the 29-prompt ensemble")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--device", default="auto")
    add_released_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Predict every readable video; an unreadable one is reported and the others go on (status 1)."""
    from froster.cli import exit_status
    from froster.distributed import resolve_device
    from froster.evaluation.predict import parse_classes, predict_file

    videos, overrides = split_overrides(args.inputs)
    if not videos:
        raise UsageError(f"no video files among {args.inputs}; give at least one")
    classes = parse_classes(args.classes)  # the cheap checks first, before any model is built
    device = resolve_device(args.device, what="--device")
    student, config = load_student(args.checkpoint, args.config, overrides, args)
    results, failed = {}, []
    for video in videos:
        try:
            ranked = predict_file(student, video, classes, config.data, ensemble=not args.no_ensemble, device=device)
        except Exception as error:  # noqa: BLE001 - one bad file must not stop the others
            if exit_status(error) != 1:  # not a problem of this file: the boundary reports it
                raise
            print(f"froster predict: {error}", file=sys.stderr)
            failed.append(video)
            continue
        results[video] = ranked[: args.top]
    if failed and len(videos) > 1:
        print(f"froster predict: {len(failed)} of {len(videos)} videos could not be read", file=sys.stderr)
    if args.json:
        print(json.dumps({v: [{"class": c, "probability": p} for c, p in r] for v, r in results.items()}, indent=2))
    else:
        for video, ranked in results.items():
            print(video)
            width = max(len(name) for name, _ in ranked)
            for i, (name, prob) in enumerate(ranked, start=1):
                print(f"  {i:>2}. {name:<{width}}  {100 * prob:6.2f}%")
    return 1 if failed else 0
