"""Several runs' ``metrics.json`` as the paper's tables: base-to-novel and cross-dataset.

A run is a folder holding the ``metrics.json`` that ``froster train`` (at the end) or
``froster eval`` (in ``eval-<weights>/``) writes, or that file itself. Runs are grouped into table
rows by a label: ``LABEL=PATH`` names it, else it is the student of the run's stored config
(``checkpoints/*/config.json``), else the folder's name. The sets of each run are read as:

* base-to-novel, two sets ``<dataset>_base`` and ``<dataset>_novel`` (the per-split recipes
  ``b2n_<dataset>_s<k>``): each side's top-1 accuracy, classified among its own classes; or one
  set whose metrics carry ``base`` and ``novel`` (``eval.sets.*.base_classes``), under its group
  or its name;
* every other set: its top-1 accuracy under its group (``eval.sets.*.group``: the three UCF101,
  HMDB51 or K600 splits of the cross-dataset recipe) or, without a group, under its own name.

Each cell is the mean +- population std (as :func:`froster.evaluation.metrics.summarize_groups`)
over every split of that dataset in the row's runs: the three few-shot training splits of
base-to-novel (one run each), the three test splits of cross-dataset (one run). HM is the
harmonic mean of the mean base and mean novel accuracies, as the paper reports it.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from froster.evaluation.metrics import harmonic_mean

PathLike = Union[str, os.PathLike]
# Column order of the paper's tables.
BASE_TO_NOVEL_ORDER = ("k400", "hmdb51", "ucf101", "ssv2")
CROSS_DATASET_ORDER = ("ucf101", "hmdb51", "k600")
DISPLAY = {"k400": "K400", "k600": "K600", "hmdb51": "HMDB51", "ucf101": "UCF101", "ssv2": "SSv2"}


@dataclass
class Run:
    """One run's metrics and the row it belongs to."""

    label: str
    source: Path
    sets: dict
    groups: dict


@dataclass
class Summary:
    """Per row label and dataset: the base/novel pairs and the cross-dataset top-1 values."""

    base_to_novel: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    cross_dataset: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def rows(self) -> list[str]:
        return list(dict.fromkeys([*self.base_to_novel, *self.cross_dataset]))


def metrics_file(path: PathLike) -> Path:
    """The ``metrics.json`` a run path stands for (the file, the run folder, or its one eval folder)."""
    path = Path(path)
    if path.is_file():
        return path
    if (path / "metrics.json").is_file():
        return path / "metrics.json"
    evals = sorted(path.glob("eval-*/metrics.json")) if path.is_dir() else []
    if len(evals) == 1:
        return evals[0]
    if evals:
        listing = ", ".join(str(e.parent) for e in evals)
        raise FileNotFoundError(f"{path}: several evaluations ({listing}); name the one to summarize")
    raise FileNotFoundError(f"{path}: no metrics.json (a run folder after `froster train`, or an eval-* folder)")


def _stored_student(folder: Path) -> Optional[str]:
    for run in (folder, folder.parent):
        checkpoints = run / "checkpoints"
        pointer = checkpoints / "latest"
        candidates = [checkpoints / pointer.read_text().strip()] if pointer.is_file() else sorted(checkpoints.glob("*"))[::-1]
        for checkpoint in candidates:
            config = checkpoint / "config.json"
            if config.is_file():
                return json.loads(config.read_text()).get("student", {}).get("name")
    return None


def load_run(spec: str) -> Run:
    """``"PATH"`` or ``"LABEL=PATH"`` -> the run's metrics and row label.

    Raises:
        FileNotFoundError: No metrics file there.
        froster.data.textfiles.DataFileError: A file that is not JSON, or without ``sets`` (not
            written by froster).
    """
    from froster.data.textfiles import DataFileError

    label, _, path = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
    source = metrics_file(path)
    try:
        data = json.loads(source.read_text())
    except ValueError as error:
        raise DataFileError(f"{source}: not a froster metrics file (not JSON: {error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise DataFileError(f"{source}: not a froster metrics file (no 'sets' object)")
    folder = source.parent
    label = label or _stored_student(folder) or (folder.parent.name if folder.name.startswith("eval-") else folder.name)
    return Run(label, source, data["sets"], data.get("groups") or {})


def _top1(metrics: dict) -> Optional[float]:
    value = metrics.get("top1")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def summarize(runs: Sequence[Run]) -> Summary:
    """Sort every set of every run into the base-to-novel and cross-dataset tables."""
    summary = Summary()
    for run in runs:
        group_of = {name: group for group, entry in run.groups.items() for name in entry.get("sets", [])}
        b2n = summary.base_to_novel.setdefault(run.label, {})
        cross = summary.cross_dataset.setdefault(run.label, {})
        used = set()
        for name, metrics in run.sets.items():
            if name.endswith("_base") and f"{name[:-5]}_novel" in run.sets:
                base, novel = _top1(metrics), _top1(run.sets[f"{name[:-5]}_novel"])
                if base is not None and novel is not None:
                    b2n.setdefault(name[:-5], []).append((base, novel))
                used |= {name, f"{name[:-5]}_novel"}
            elif metrics.get("base") is not None and metrics.get("novel") is not None:
                b2n.setdefault(group_of.get(name, name), []).append((float(metrics["base"]), float(metrics["novel"])))
                used.add(name)
        for name, metrics in run.sets.items():
            top1 = _top1(metrics)
            if name not in used and top1 is not None:
                cross.setdefault(group_of.get(name, name), []).append(top1)
    for table in (summary.base_to_novel, summary.cross_dataset):
        for label in [label for label, cells in table.items() if not cells]:
            del table[label]
    return summary


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _datasets(table: dict, order: Sequence[str]) -> list[str]:
    names = {dataset for cells in table.values() for dataset in cells}
    return [d for d in order if d in names] + sorted(names - set(order))


def _cell(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f} ± {std:.1f}"


def to_markdown(summary: Summary) -> str:
    """The two tables of the paper, with the number of splits behind each cell."""
    parts = []
    if summary.base_to_novel:
        datasets = _datasets(summary.base_to_novel, BASE_TO_NOVEL_ORDER)
        header = ["method"] + [f"{DISPLAY.get(d, d)} {m}" for d in datasets for m in ("base", "novel", "HM")] + ["splits"]
        lines = ["## Base-to-novel (top-1 %, mean ± std over splits; HM of the means)", "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, cells in summary.base_to_novel.items():
            row = [label]
            for d in datasets:
                pairs = cells.get(d, [])
                if not pairs:
                    row += ["", "", ""]
                    continue
                base, novel = [b for b, _ in pairs], [n for _, n in pairs]
                row += [_cell(base), _cell(novel), f"{harmonic_mean(mean_std(base)[0], mean_std(novel)[0]):.1f}"]
            row.append(", ".join(f"{DISPLAY.get(d, d)} {len(cells[d])}" for d in datasets if d in cells))
            lines.append("| " + " | ".join(row) + " |")
        parts.append("\n".join(lines))
    if summary.cross_dataset:
        datasets = _datasets(summary.cross_dataset, CROSS_DATASET_ORDER)
        header = ["method"] + [DISPLAY.get(d, d) for d in datasets] + ["splits"]
        lines = ["## Cross-dataset and other sets (top-1 %, mean ± std over splits)", "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, values in summary.cross_dataset.items():
            row = [label] + [_cell(values[d]) if d in values else "" for d in datasets]
            row.append(", ".join(f"{DISPLAY.get(d, d)} {len(values[d])}" for d in datasets if d in values))
            lines.append("| " + " | ".join(row) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def to_csv(summary: Summary) -> str:
    """The same tables, one row per method: ``<dataset>_{base,novel}_{mean,std}``, ``<dataset>_hm``,
    ``<dataset>_b2n_splits``, ``<dataset>_top1_{mean,std}``, ``<dataset>_top1_splits``."""
    b2n = _datasets(summary.base_to_novel, BASE_TO_NOVEL_ORDER)
    cross = _datasets(summary.cross_dataset, CROSS_DATASET_ORDER)
    columns = ["method"]
    for d in b2n:
        columns += [f"{d}_base_mean", f"{d}_base_std", f"{d}_novel_mean", f"{d}_novel_std", f"{d}_hm", f"{d}_b2n_splits"]
    for d in cross:
        columns += [f"{d}_top1_mean", f"{d}_top1_std", f"{d}_top1_splits"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for label in summary.rows():
        row: dict = {"method": label}
        for d, pairs in summary.base_to_novel.get(label, {}).items():
            (bm, bs), (nm, ns) = mean_std([b for b, _ in pairs]), mean_std([n for _, n in pairs])
            row.update({
                f"{d}_base_mean": round(bm, 4), f"{d}_base_std": round(bs, 4),
                f"{d}_novel_mean": round(nm, 4), f"{d}_novel_std": round(ns, 4),
                f"{d}_hm": round(harmonic_mean(bm, nm), 4), f"{d}_b2n_splits": len(pairs),
            })
        for d, values in summary.cross_dataset.get(label, {}).items():
            mean, std = mean_std(values)
            row.update({f"{d}_top1_mean": round(mean, 4), f"{d}_top1_std": round(std, 4), f"{d}_top1_splits": len(values)})
        writer.writerow(row)
    return buffer.getvalue()


__all__ = ["Run", "Summary", "load_run", "mean_std", "metrics_file", "summarize", "to_csv", "to_markdown"]
