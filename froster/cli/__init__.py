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
``run(args) -> int``, and optionally ``TRAILING``: the name of its list of positional arguments
that also collects plain arguments given after options (argparse alone stops at the first option:
``froster predict clip.mp4 --top 3 data.num_test_clips=1``). Adding a subcommand means adding its
module to :data:`COMMANDS`.

Errors go through one boundary, :func:`main`: a mistake in the input is one or two lines naming
it, and an exit status that says which kind it was (``--debug`` adds the traceback):

====  ========================================================================================
 0    success
 1    data or I/O: a missing, unreadable or malformed file (videos, split and class files,
      weights, checkpoints), a run directory held by another run, nothing readable to train on
 2    usage or config: a bad argument, config key or value, a resume with a changed config
 3    an unexpected error: a bug, reported as such
130   interrupted (Ctrl-C)
====  ========================================================================================
"""
from __future__ import annotations

import argparse
import sys
import traceback
from types import ModuleType
from typing import Optional, Sequence

from froster.cli import data, evaluate, predict, recipes, summarize, train

COMMANDS: tuple[ModuleType, ...] = (train, evaluate, predict, recipes, data, summarize)

EXIT_DATA, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    """The ``froster`` argument parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="froster", description="FROSTER: distil a frozen CLIP into a video student.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.NAME, help=command.HELP)
        # SUPPRESS: without the flag here, the subcommand leaves `froster --debug <command>` alone.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
        command.add_arguments(sub)
    return parser


def exit_status(error: BaseException) -> int:
    """The exit status of an error: 2 usage/config, 1 data/I-O, 3 anything else (a bug)."""
    from froster.cli._shared import UsageError
    from froster.data.classes import ClassListError
    from froster.data.decoding import CorruptVideoError
    from froster.data.textfiles import DataFileError
    from froster.training.checkpoint import CheckpointError, WeightsFileError
    from froster.training.run_lock import RunDirectoryInUse
    from froster.training.trainer import TrainingDataError
    from froster.validation import ConfigError
    from froster.weights_safety import CorruptWeightsError

    if isinstance(error, (ConfigError, UsageError, ClassListError)):
        return EXIT_USAGE
    data_errors = (OSError, DataFileError, CorruptVideoError, WeightsFileError, CorruptWeightsError,
                   CheckpointError, RunDirectoryInUse, TrainingDataError)
    if isinstance(error, data_errors):
        return EXIT_DATA
    return EXIT_BUG


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The parsed command line; plain arguments after options join the command's ``TRAILING`` list."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    trailing = getattr(_command(args.command), "TRAILING", None)
    unknown = [extra for extra in extras if extra.startswith("-") or trailing is None]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if trailing is not None:
        getattr(args, trailing).extend(extras)
    return args


def _command(name: str) -> ModuleType:
    return {command.NAME: command for command in COMMANDS}[name]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``froster`` command; returns the exit status (see the module docstring)."""
    try:
        args = parse_args(argv)
    except SystemExit as stop:  # argparse's own usage errors (status 2) and --help (0)
        return int(stop.code or 0)
    handler = _command(args.command).run
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"froster {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the one boundary between errors and the user
        status = exit_status(error)
        if args.debug:
            traceback.print_exc()
        kind = {EXIT_USAGE: "", EXIT_DATA: "", EXIT_BUG: f"unexpected error (a bug; please report it): {type(error).__name__}: "}[status]
        hint = "" if args.debug else " (--debug shows the traceback)" if status == EXIT_BUG else ""
        print(f"froster {args.command}: {kind}{_message(error)}{hint}", file=sys.stderr)
        return status


def _message(error: BaseException) -> str:
    # KeyError's str() is the repr of its argument; the others are the message itself.
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(text) or type(error).__name__


__all__ = ["COMMANDS", "build_parser", "exit_status", "main", "parse_args"]
