"""Result files of the benchmarks: JSON with the machine, CSV rows stamped with it, a markdown table.

Imported through :mod:`_harness`; kept apart so each file stays one concept.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

Row = dict[str, Any]
# (key, header, format) of one markdown column: a format spec (".1f") or a function to text.
Column = tuple[str, str, Union[str, Callable[[Any], str]]]


def _fmt(value: Any, spec: Union[str, Callable[[Any], str]]) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if callable(spec):
        return spec(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def markdown_table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    """A markdown table of ``rows`` with the given ``(key, header, format)`` columns."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(k), spec) for k, _, spec in columns) + " |")
    return "\n".join(lines)


def _columns_of(rows: Iterable[Row]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return keys


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def append_results_csv(path: str | os.PathLike, rows: Sequence[Row]) -> Path:
    """Append ``rows`` to a CSV file, creating it with a header, or widening it for new keys."""
    path = Path(path)
    old: list[Row] = []
    if path.exists():
        with path.open(newline="") as f:
            old = list(csv.DictReader(f))
    columns = _columns_of([*old, *rows])
    mode = "a" if old and list(old[0]) == columns else "w"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if mode == "w":
            writer.writeheader()
            writer.writerows(old)
        writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
    return path


def write_results(
    rows: Sequence[Row],
    out_dir: str | os.PathLike,
    meta: dict[str, Any],
    columns: Optional[Sequence[Column]] = None,
    title: str = "Benchmark results",
    stem: str = "results",
    notes: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``<stem>.json`` (meta + rows), ``<stem>.csv`` and ``<stem>.md`` into ``out_dir``.

    Every CSV row repeats the machine's name and the versions so that rows from different
    machines can be concatenated and still be told apart.

    Args:
        rows: One flat dict per measured configuration.
        out_dir: Created if missing.
        meta: At least ``{"machine": machine_info(...)}``; saved whole in the JSON.
        columns: Columns of the markdown table; every key when ``None``.
        title: Heading of the markdown file.
        stem: File name without extension.
        notes: Lines printed under the markdown table.

    Returns:
        ``{"json": ..., "csv": ..., "md": ...}`` paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("json", "csv", "md")}
    paths["json"].write_text(json.dumps({**meta, "results": list(rows)}, indent=2, default=str) + "\n")

    machine = meta.get("machine", {})
    stamp = {f"machine_{k}": machine.get(k) for k in ("device_name", "torch", "open_clip", "triton", "date_utc")}
    if paths["csv"].exists():
        paths["csv"].unlink()
    append_results_csv(paths["csv"], [{**row, **stamp} for row in rows])

    columns = columns or [(k, k, "") for k in _columns_of(rows)]
    described = ", ".join(f"{k}: {v}" for k, v in machine.items() if v is not None)
    settings = ", ".join(f"{k}={v}" for k, v in meta.get("settings", {}).items())
    text = [f"# {title}", "", f"Machine: {described}", ""]
    if settings:
        text += [f"Settings: {settings}", ""]
    text += [markdown_table(rows, columns), ""]
    if notes:
        text += [*(f"- {line}" for line in notes), ""]
    paths["md"].write_text("\n".join(text))
    return paths
