"""What a resume may change: the fields of a run config that differ from the checkpoint's.

A checkpoint stores the config it was trained with. Resuming it with another learning rate, loss
weight or dataset would continue a different run under the old run's name, and the optimiser state
would silently keep the old hyper-parameters; so a resume compares the two configs and is refused,
naming each field, unless the change is allowed explicitly (``--allow-config-change``).

Fields that only say how a run is carried out (:data:`RESUMABLE_CHANGES`) may always change.
"""
from __future__ import annotations

import json
from typing import Any

import torch

from froster.training.configs import ConfigError, OptimConfig, RunConfig
from froster.training.optim import param_groups

# How a run is carried out, not what it trains. A key ending in "." covers a whole section.
RESUMABLE_CHANGES = (
    "train.max_steps", "train.progress", "train.eval_at_end", "train.log_every_steps",
    "train.checkpoint_every_steps", "train.keep_checkpoints", "train.device", "train.output_dir",
    "data.num_workers", "eval.",
)


class ConfigChangedError(ConfigError):
    """A resume whose config differs from the checkpoint's, without leave to change it."""


def config_changes(stored_json: str, config: RunConfig) -> dict[str, tuple[Any, Any]]:
    """``{dotted field: (stored, current)}`` for every field that differs, outside :data:`RESUMABLE_CHANGES`.

    The stored config is read through :class:`RunConfig`, so fields added since it was written
    compare at their defaults.
    """
    try:
        stored = RunConfig.from_json(stored_json).to_dict()
    except ConfigError:  # written by another version: compare what is there
        stored = json.loads(stored_json)
    old, new = _flatten(stored), _flatten(config.to_dict())
    missing = object()
    changed = {}
    for key in sorted(set(old) | set(new)):
        if any(key == p or (p.endswith(".") and key.startswith(p)) for p in RESUMABLE_CHANGES):
            continue
        before, after = old.get(key, missing), new.get(key, missing)
        if before != after:
            changed[key] = (None if before is missing else before, None if after is missing else after)
    return changed


def refusal(checkpoint: str, changes: dict[str, tuple[Any, Any]]) -> ConfigChangedError:
    """The error of a resume with ``changes``, one line per field."""
    listed = "\n".join(f"  {key}: {old!r} in the checkpoint, {new!r} now" for key, (old, new) in changes.items())
    return ConfigChangedError(
        f"the config differs from the one {checkpoint} was trained with:\n{listed}\n"
        "resume with the checkpoint's values, pass --allow-config-change (Python: allow_config_change=True) "
        "to continue with the new ones, or start afresh (--resume none or another train.output_dir)"
    )


def apply_optim_config(optimizer: torch.optim.Optimizer, model: torch.nn.Module, config: OptimConfig) -> None:
    """Set ``config``'s learning rate, betas, eps and weight decay on every parameter group.

    ``optimizer.load_state_dict`` restores the hyper-parameters the checkpoint was trained with;
    after an allowed change the new ones must apply (with none, this sets the same values).
    """
    built = [g for g in param_groups(model, config.weight_decay, config.decay_1d) if g["params"]]
    for group, fresh in zip(optimizer.param_groups, built):
        group.update(initial_lr=config.lr, betas=tuple(config.betas), eps=config.eps, weight_decay=fresh["weight_decay"])


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}``; empty mappings stay as values."""
    if isinstance(tree, dict) and tree:
        return {k: v for key, value in tree.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tree}


__all__ = ["ConfigChangedError", "RESUMABLE_CHANGES", "apply_optim_config", "config_changes", "refusal"]
