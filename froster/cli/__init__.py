"""The ``froster`` command: one subcommand per module of this package.

::

    froster train --config k400_cross_dataset data.root=/data student.name=vclip
    torchrun --nproc_per_node 8 -m froster train --config k400_cross_dataset data.root=/data
    froster eval --checkpoint runs/k400_cross_dataset/avg.safetensors
    froster predict clip.mp4 --classes "juggling,abseiling,surfing" --checkpoint runs/x/avg.safetensors
    froster recipes                       # list; `froster recipes tiny_synthetic` prints one

Trailing ``key=value`` arguments override the recipe (dotted keys, values parsed as JSON when
they parse); see ``docs/training.md``.

A subcommand is a module with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; adding one means adding its module to :data:`COMMANDS`.
"""
from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Optional, Sequence

from froster.cli import data, evaluate, predict, recipes, summarize, train
from froster.training.overrides import ConfigError

COMMANDS: tuple[ModuleType, ...] = (train, evaluate, predict, recipes, data, summarize)


def build_parser() -> argparse.ArgumentParser:
    """The ``froster`` argument parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="froster", description="FROSTER: distil a frozen CLIP into a video student.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_arguments(subparsers.add_parser(command.NAME, help=command.HELP))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``froster`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler = {command.NAME: command.run for command in COMMANDS}[args.command]
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


__all__ = ["COMMANDS", "build_parser", "main"]
