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
    inputs, overrides = [], []
    for argument in arguments:
        is_override = _OVERRIDE.match(argument) is not None and not os.path.exists(argument)
        (overrides if is_override else inputs).append(argument)
    return inputs, overrides


def load_student(checkpoint: str, config_name: Optional[str], overrides: Sequence[str]):
    """The trained student and the run config.

    The architecture comes from the config stored with the weights (the weights must fit it);
    the rest (data, eval sets) from ``--config`` when given, else from the stored config, with
    the overrides applied either way. Overrides are checked before any model is built.
    """
    from froster.recipes import load_recipe
    from froster.training.build import load_trained_student, stored_run_config
    from froster.training.checkpoint import WeightsFileError, weights_metadata
    from froster.training.overrides import apply_overrides

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
