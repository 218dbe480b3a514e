"""Pieces several subcommands share: the trained student and its config, the metrics table, and
the checks of command-line arguments."""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
from typing import Optional, Sequence

from froster.training.overrides import ConfigError

# `section.key=value`: a dotted config key, then '='.
_OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z0-9_-]+)+=")


class UsageError(ValueError):
    """A command-line argument that cannot be used as given (exit status 2)."""


def positive_int(text: str) -> int:
    """argparse ``type`` of counts such as ``--top``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def split_overrides(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(inputs, overrides)`` of positional arguments: ``section.key=value`` is an override,
    wherever it stands, unless a file of that name exists."""
    inputs: list[str] = []
    overrides: list[str] = []
    for argument in arguments:
        is_override = _OVERRIDE.match(argument) is not None and not os.path.exists(argument)
        (overrides if is_override else inputs).append(argument)
    return inputs, overrides


def add_released_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that describe a released checkpoint (FROSTER, Open-VCLIP, ViFi-CLIP, X-CLIP), which carries no froster config."""
    group = parser.add_argument_group("released checkpoints", "for --checkpoint files that froster did not write")
    group.add_argument("--student", help="the student the file belongs to: vclip (FROSTER, Open-VCLIP), vificlip, xclip")
    group.add_argument("--clip", help="open_clip model name of the file's CLIP (default: student.clip, ViT-B-16)")
    group.add_argument("--pretrained", help="the CLIP the file started from (e.g. openai): ViFi-CLIP files and patching need it")
    group.add_argument("--frames", type=positive_int, help="frames per clip the file was trained with (X-CLIP files say it)")
    group.add_argument("--patch-ratio", type=float, help="weight patching against --pretrained (Open-VCLIP B/16: 0.5)")


def _is_froster_weights(checkpoint: str) -> bool:
    return os.path.isdir(checkpoint) or checkpoint.endswith(".safetensors")


def load_released_student(checkpoint: str, config_name: Optional[str], overrides: Sequence[str], args: argparse.Namespace):
    """A student built from a released checkpoint with ``--student`` and friends, and a run config.

    The config is ``--config`` (with the overrides) when given, else the defaults; its frame count
    is the student's. The flags win over the config's ``student`` section, whose
    ``clip_overrides`` and ``options`` are passed on.
    """
    from froster.recipes import load_recipe
    from froster.registry import build_student, list_students
    from froster.training.configs import RunConfig
    from froster.training.overrides import apply_overrides

    if not getattr(args, "student", None):
        raise UsageError(
            f"--checkpoint {checkpoint} is not a froster weights file (.safetensors, checkpoint or run directory); "
            "for a released FROSTER / Open-VCLIP / ViFi-CLIP / X-CLIP file, say which student it belongs to with "
            "--student (and --clip, --pretrained, --frames as docs/students.md lists)"
        )
    if args.student not in list_students():
        raise UsageError(f"--student: unknown student {args.student!r}; known students: {', '.join(list_students())}")
    config = load_recipe(config_name, overrides) if config_name is not None else apply_overrides(RunConfig(), overrides)
    kwargs = {**config.student.options, **config.student.clip_overrides}
    kwargs.update(clip=args.clip or config.student.clip, pretrained=args.pretrained)
    if args.frames is not None:
        kwargs["num_frames"] = args.frames
    elif args.student != "xclip":  # X-CLIP files carry their frame count
        kwargs["num_frames"] = config.data.num_frames
    student = build_student(args.student, checkpoint=checkpoint, patch_ratio=args.patch_ratio, **kwargs)
    frames = student.num_frames
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, num_frames=frames))
    return student.eval(), config


def load_student(checkpoint: str, config_name: Optional[str], overrides: Sequence[str], args: Optional[argparse.Namespace] = None):
    """The trained student and the run config.

    The architecture comes from the config stored with the weights (the weights must fit it);
    the rest (data, eval sets) from ``--config`` when given, else from the stored config, with
    the overrides applied either way. Overrides are checked before any model is built. A
    released checkpoint (not written by froster) is built with :func:`load_released_student`.
    """
    from froster.recipes import load_recipe
    from froster.training.build import load_trained_student, stored_run_config
    from froster.training.checkpoint import WeightsFileError, weights_metadata
    from froster.training.overrides import apply_overrides

    if os.path.isfile(checkpoint) and (not _is_froster_weights(checkpoint) or getattr(args, "student", None)):
        return load_released_student(checkpoint, config_name, overrides, args or argparse.Namespace())
    if os.path.isfile(checkpoint):
        weights_metadata(checkpoint)  # a WeightsFileError for anything but a safetensors file
    stored = stored_run_config(checkpoint)
    if config_name is not None:
        config = load_recipe(config_name, overrides)
    elif stored is not None:
        config = apply_overrides(stored, overrides)
    else:
        raise ConfigError(f"{checkpoint} carries no config; pass --config <recipe or JSON>")
    try:
        student, _ = load_trained_student(checkpoint, stored or config)
    except ConfigError:
        raise
    except ValueError as error:  # the weights do not fit the architecture they came with
        raise WeightsFileError(str(error)) from error
    frames = getattr(student, "num_frames", config.data.num_frames)
    if config.data.num_frames != frames:  # the clips must fit the student the weights belong to
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, num_frames=frames))
    return student, config


def report_table(report: dict) -> str:
    """The markdown table of an evaluation report."""
    from froster.evaluation.metrics import markdown_table

    return markdown_table(report["sets"], report["groups"])
