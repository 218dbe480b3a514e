"""``froster train``: train a student from a recipe (``torchrun`` for several GPUs)."""
from __future__ import annotations

import argparse

from froster.cli._shared import report_table

NAME = "train"
HELP = "train a student (torchrun for several GPUs)"
TRAILING = "overrides"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="recipe name (froster recipes) or JSON file")
    parser.add_argument("--resume", default="auto", help="'auto' (latest checkpoint in train.output_dir), 'none', or a checkpoint path")
    parser.add_argument(
        "--allow-config-change", action="store_true",
        help="resume even though the config differs from the checkpoint's (the change is recorded in state.json)",
    )
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.lr=3.33e-6")


def run(args: argparse.Namespace) -> int:
    from froster import distributed as D
    from froster.recipes import load_recipe
    from froster.training.trainer import train

    config = load_recipe(args.config, args.overrides)
    resume = None if args.resume == "none" else args.resume
    info = D.init_distributed(config.train.device)
    try:
        result = train(config, resume=resume, info=info, allow_config_change=args.allow_config_change)
        if info.is_main and result.get("metrics"):
            print(report_table(result["metrics"]), end="")
    finally:
        D.cleanup()
    return 0
