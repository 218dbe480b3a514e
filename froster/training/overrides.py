"""Dataclass configs from JSON-like dicts and dotted ``key=value`` overrides, checked by type.

A run's configuration is a small tree of component dataclasses (``data``, ``student``,
``optim``, ...). This module turns dicts into such trees and applies command-line overrides such
as ``optim.lr=3.33e-6`` or ``eval.sets.ucf101.root=/data/ucf101``; an unknown key is an error that
lists the known ones, and a value of the wrong type is an error that names the expected type.

Values are read as JSON when they parse (``3``, ``1e-5``, ``true``, ``null``, ``[224, 256]``,
``{"layers": 2}``), else as the raw string, so ``data.root=/data/k400`` needs no quotes.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, Union

from froster.validation import ConfigError, FieldValueError, loads_json

__all__ = ["ConfigError", "from_dict", "to_dict", "apply_override", "apply_overrides", "loads_json", "parse_value"]


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"true"`` -> True, ``"null"`` -> None, ``"[1, 2]"`` -> [1, 2], else the string.

    ``NaN`` and ``Infinity`` stay strings (JSON has no such numbers), so a number field refuses them.
    """
    try:
        return loads_json(text)
    except ConfigError:
        return text


def _known(cls: type) -> list[str]:
    return sorted(f.name for f in dataclasses.fields(cls))


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against ``annotation`` and convert what converts losslessly."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {args}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {annotation.__name__} fields, got {value!r}")
        return from_dict(annotation, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        value_type = args[1] if args else Any
        return {str(k): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return json.dumps(value)  # `student.name=123` parsed as JSON; the field wants text
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build the dataclass ``cls`` from ``values``, recursing into nested config dataclasses.

    Raises:
        ConfigError: A key ``cls`` does not have (the message lists the known keys) or a value
            of the wrong type; the error names the dotted path.
    """
    if not isinstance(values, dict):
        what = f"{where}: expected a mapping of {cls.__name__} fields" if where else "expected a JSON object of config sections"
        raise ConfigError(f"{what}, got {_kind(values)}")
    hints = _hints(cls)
    known = _known(cls)
    prefix = f"{where}." if where else ""
    unknown = sorted(set(map(str, values)) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) {[prefix + k for k in unknown]}; known keys of {where or cls.__name__}: {known}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except FieldValueError as error:  # raised by the dataclass's own range checks
        raise ConfigError(f"{prefix}{error}") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where or cls.__name__}: {error}") from error


def _kind(value: Any) -> str:
    return {list: "a list", str: "a str", type(None): "null"}.get(type(value), f"{type(value).__name__} {value!r}")


def to_dict(config: Any) -> Any:
    """The JSON-ready form of a config tree (dataclasses to dicts, tuples to lists)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    return config


def _set(tree: dict[str, Any], cls: type, keys: list[str], value: Any, where: str) -> None:
    """Set ``keys`` in the dict form ``tree`` of dataclass ``cls``, checking every key on the way."""
    name, rest = keys[0], keys[1:]
    known = _known(cls)
    here = f"{where}.{name}" if where else name
    if name not in known:
        raise ConfigError(f"unknown key {here!r}; known keys of {where or cls.__name__}: {known}")
    annotation = _hints(cls)[name]
    if not rest:
        tree[name] = value
        return
    inner = _strip_optional(annotation)
    if isinstance(inner, type) and dataclasses.is_dataclass(inner):
        if tree.get(name) is None:
            tree[name] = {}
        _set(tree[name], inner, rest, value, here)
    elif typing.get_origin(inner) is dict:
        mapping = tree.get(name)
        if mapping is None:
            mapping = tree[name] = {}
        value_type = _strip_optional(typing.get_args(inner)[1]) if typing.get_args(inner) else Any
        key = rest[0]
        if dataclasses.is_dataclass(value_type) and len(rest) > 1:
            if key not in mapping:
                raise ConfigError(
                    f"unknown entry {here + '.' + key!r}; entries of {here}: {sorted(mapping)} "
                    f"(add one whole: {here}.{key}='{{...JSON...}}')"
                )
            _set(mapping[key], value_type, rest[1:], value, f"{here}.{key}")
        elif len(rest) == 1:
            mapping[key] = value
        else:
            nested = mapping.setdefault(key, {})
            if not isinstance(nested, dict):
                raise ConfigError(f"{here}.{key} is {nested!r}, not a mapping")
            _set_free(nested, rest[1:], value)
    else:
        raise ConfigError(f"{here} is a single value ({annotation}); it has no key {rest[0]!r}")


def _set_free(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    # Free-form mappings (open_clip overrides such as student.clip_overrides.vision_cfg.width).
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return annotation


def apply_override(config: Any, override: str) -> Any:
    """A copy of ``config`` with one ``dotted.key=value`` override applied and re-validated."""
    if "=" not in override:
        raise ConfigError(f"an override must read key=value, got {override!r}")
    dotted, _, text = override.partition("=")
    keys = [k for k in dotted.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"an override needs a key, got {override!r}")
    tree = to_dict(config)
    _set(tree, type(config), keys, parse_value(text.strip()), "")
    return from_dict(type(config), tree)


def apply_overrides(config: Any, overrides: typing.Iterable[str]) -> Any:
    """:func:`apply_override` for each override in order."""
    for override in overrides:
        config = apply_override(config, override)
    return config
