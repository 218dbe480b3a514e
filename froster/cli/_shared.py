"""Pieces several subcommands share: the trained student and its config, the metrics table."""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from froster.training.overrides import ConfigError


def load_student(checkpoint: str, config_name: Optional[str], overrides: Sequence[str]):
    """The trained student and the run config.

    The architecture comes from the config stored with the weights (the weights must fit it);
    the rest (data, eval sets) from ``--config`` when given, else from the stored config, with
    the overrides applied either way. Overrides are checked before any model is built.
    """
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


def report_table(report: dict) -> str:
    """The markdown table of an evaluation report."""
    from froster.evaluation.metrics import markdown_table

    return markdown_table(report["sets"], report["groups"])
