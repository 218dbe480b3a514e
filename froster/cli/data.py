"""``froster data``: prepare datasets from their official files, and check a prepared split.

::

    froster data prepare ucf101 --root /datasets/UCF101 --out /data/froster --splits ~/src/ViFi-CLIP
    froster data check /data/froster/ucf101/test_split1.txt --root /data/froster --workers 8 --clean test_split1.clean.txt
"""
from __future__ import annotations

import argparse
import os

NAME = "data"
HELP = "prepare datasets from their official files; check a split's videos"


def _count(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from froster.data.decoding import BACKENDS
    from froster.data.prepare import DATASETS

    commands = parser.add_subparsers(dest="data_command", required=True)
    prepare = commands.add_parser("prepare", help="write the split and class files the recipes name")
    prepare.add_argument("dataset", choices=DATASETS)
    prepare.add_argument("--root", required=True, help="folder of the videos (any layout below it)")
    prepare.add_argument("--out", help="where to write <out>/<dataset>/... (the recipes' data.root); default: --root")
    prepare.add_argument("--annotations", help="folder of the publisher's annotation files; default: searched under --root")
    prepare.add_argument(
        "--splits", help="folder of the community split files (a ViFi-CLIP checkout) for base-to-novel and K600 subsets"
    )

    check = commands.add_parser("check", help="decode every video of a split in parallel; report the unreadable ones")
    check.add_argument("split", help="a 'path label' split file")
    check.add_argument("--root", help="folder the split's paths are relative to; default: the split's folder")
    check.add_argument("--classes", help="class-name file: labels are checked against it")
    check.add_argument("--workers", type=_count, default=min(8, os.cpu_count() or 1), help="worker processes (0: none)")
    check.add_argument("--backend", choices=BACKENDS, default="auto")
    check.add_argument("--full", action="store_true", help="decode every frame, not only the first, middle and last")
    check.add_argument("--report", help="CSV report; default: <split>.check.csv")
    check.add_argument("--clean", help="also write the split without its unreadable videos here")
    check.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "prepare":
        from froster.data.prepare import prepare

        report = prepare(args.dataset, args.root, out=args.out, annotations=args.annotations, splits=args.splits)
        print(report.text())
        print(f"report written to {report.out}/{report.dataset}/prepare_report.json")
        return 0

    from froster.data.check import check_split, summary, write_clean_split, write_report
    from froster.data.classes import read_class_names

    num_classes = len(read_class_names(args.classes)) if args.classes else None
    results = check_split(args.split, args.root, num_classes, args.workers, args.backend, args.full, not args.no_progress)
    print(summary(results))
    written = write_report(results, args.report or f"{args.split}.check.csv")
    print(f"report written to {written}")
    if args.clean:
        clean = write_clean_split(args.split, results, args.clean)
        print(f"{sum(r.ok for r in results)} decodable videos written to {clean}")
    return 0
