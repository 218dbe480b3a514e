"""``froster predict``: zero-shot, rank any class names for video files."""
from __future__ import annotations

import argparse
import json

from froster.cli._shared import load_student

NAME = "predict"
HELP = "zero-shot: rank any class names for video files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", help="video files")
    parser.add_argument("--classes", required=True, help="comma-separated class names, or a class-name file")
    parser.add_argument("--checkpoint", required=True, help="weights (.safetensors), checkpoint dir or run dir")
    parser.add_argument("--config", help="recipe or JSON file; default: the config stored with the weights")
    parser.add_argument("--top", type=int, default=5, help="classes printed per video")
    parser.add_argument("--no-ensemble", action="store_true", help="one template instead of the 29-prompt ensemble")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides (e.g. data.num_test_clips=1)")


def run(args: argparse.Namespace) -> int:
    from froster.distributed import resolve_device
    from froster.evaluation.predict import parse_classes, predict_file

    student, config = load_student(args.checkpoint, args.config, args.overrides)
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
