"""Training recipes shipped with the package, as JSON config trees.

* ``k400_cross_dataset``: the paper's cross-dataset recipe (K400 -> UCF101 / HMDB51 / K600).
* ``base_to_novel``: 16 videos per base class, 12 epochs, base / novel / harmonic mean.
* ``b2n_<dataset>_s<k>`` (K400, HMDB51, UCF101, SSv2; splits 1-3): base-to-novel on the prepared
  few-shot split ``<dataset>/b2n/train_s<k>.txt``, evaluated on ``<dataset>_base`` and
  ``<dataset>_novel``.
* ``tiny_synthetic``: a tiny random CLIP on synthetic videos; runs on a CPU in seconds.

>>> from froster.recipes import load_recipe
>>> config = load_recipe("tiny_synthetic", ["optim.lr=1e-4", "schedule.epochs=1"])
>>> config.optim.lr, config.schedule.epochs
(0.0001, 1)
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Iterable, Union

from froster.training.configs import RunConfig
from froster.training.overrides import ConfigError, apply_overrides, loads_json


def list_recipes() -> list[str]:
    """Names of the recipes shipped with the package."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name[: -len(".json")] for f in files if f.name.endswith(".json"))


def recipe_dict(name_or_path: Union[str, os.PathLike]) -> dict:
    """The raw JSON of a shipped recipe (by name) or of a JSON file (by path).

    Raises:
        ConfigError: An unknown recipe name, or a file that is not JSON (``NaN``/``Infinity``
            included; the message gives the line and column).
        FileNotFoundError: A ``.json`` path that does not exist.
    """
    path = Path(name_or_path)
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file (shipped recipes: {list_recipes()})")
        return loads_json(path.read_text(encoding="utf-8"), str(path))
    name = str(name_or_path)
    if name not in list_recipes():
        raise ConfigError(f"unknown recipe {name!r}: not a JSON file either; shipped recipes: {list_recipes()}")
    return loads_json(resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"), f"recipe {name}")


def load_recipe(name_or_path: Union[str, os.PathLike], overrides: Iterable[str] = ()) -> RunConfig:
    """A :class:`RunConfig` from a recipe with dotted ``key=value`` overrides applied in order.

    Args:
        name_or_path: A shipped recipe name (``list_recipes()``) or a path to a JSON file of the
            same form (a checkpoint's ``config.json`` works too).
        overrides: ``"optim.lr=3.33e-6"``, ``"data.root=/data/k400"``, ...

    Raises:
        ConfigError: Unknown recipe, key or a value of the wrong type; the message lists the
            known names.
    """
    return apply_overrides(RunConfig.from_dict(recipe_dict(name_or_path)), overrides)


__all__ = ["list_recipes", "load_recipe", "recipe_dict"]
