"""Kinetics-400 and Kinetics-600 from their official CSV files.

The publisher's annotations are ``train.csv``, ``validate.csv`` and ``test.csv`` (in the first
releases ``kinetics_{train,val,test}.csv`` and ``kinetics-600_{train,val,test}.csv``) with the columns
``label,youtube_id,time_start,time_end,split`` (extra columns are ignored; a file without a
``label`` column, like Kinetics-600's test set, is skipped). Each row is the clip
``{youtube_id}_{time_start:06d}_{time_end:06d}``, as the usual downloaders name the files, found
in per-class folders, per-split folders or one flat folder. Classes are numbered in the official
order: the sorted label names of the training CSV.

Written under ``<out>/<k400|k600>/``: ``classes.txt``, ``train.txt``, ``val.txt`` (and
``test.txt`` when the test CSV has labels); with the community files, ``b2n/...`` for K400 and
``subset{1,2,3}_test.txt`` / ``subset{1,2,3}_classes.txt`` for K600 (see :mod:`.community`).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

from froster.data.prepare import community
from froster.data.prepare.layout import Output, PrepareReport, VideoIndex, find_annotation, name_key
from froster.data.textfiles import DataFileError, read_text

# output split name -> the official CSV names: the current release's, then the first releases'
# (``kinetics_train.csv`` for Kinetics-400 in 2017, ``kinetics-600_train.csv`` for Kinetics-600).
CSV_FILES = {"train": ("train.csv",), "val": ("validate.csv", "val.csv"), "test": ("test.csv",)}
FIRST_RELEASE = {"k400": "kinetics_{}.csv", "k600": "kinetics-600_{}.csv"}
REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")


def clip_name(youtube_id: str, start: float, end: float) -> str:
    """``"-abc123"``, 10, 20 -> ``"-abc123_000010_000020"``."""
    return f"{youtube_id}_{int(start):06d}_{int(end):06d}"


def read_kinetics_csv(path: Path) -> list[tuple[Optional[str], str]]:
    """``(label or None, clip name)`` of every row of an official CSV, in file order.

    Raises:
        DataFileError: Missing columns or unreadable times, with the line numbers.
    """
    rows = csv.DictReader(read_text(path, "Kinetics CSV").splitlines())
    missing = [c for c in REQUIRED_COLUMNS if c not in (rows.fieldnames or [])]
    if missing:
        raise DataFileError(f"{path}: line 1: no column(s) {missing}; expected label,youtube_id,time_start,time_end,split")
    clips, problems = [], []
    for row in rows:
        try:
            name = clip_name(row["youtube_id"].strip(), float(row["time_start"]), float(row["time_end"]))
        except (TypeError, ValueError, AttributeError):
            problems.append(f"line {rows.line_num}: {row}")
            continue
        label = (row.get("label") or "").strip() or None
        clips.append((label, name))
    if problems:
        raise DataFileError(f"{path}: {len(problems)} unreadable row(s):\n  " + "\n  ".join(problems[:20]))
    return clips


def prepare_kinetics(
    dataset: str, root: Path, out: Path, annotations: Sequence[Path], splits: Sequence[Path]
) -> PrepareReport:
    """Prepare ``k400`` or ``k600`` (module docstring)."""
    if dataset not in ("k400", "k600"):
        raise ValueError(f"dataset must be 'k400' or 'k600', got {dataset!r}")
    rows = {}
    for split, names in CSV_FILES.items():
        names = (*names, FIRST_RELEASE[dataset].format(split))
        path = find_annotation(names, annotations, f"{dataset} {split} CSV", required=split == "train")
        if path is not None:
            rows[split] = (path, read_kinetics_csv(path))
    train_path, train_rows = rows["train"]
    classes = sorted({label for label, _ in train_rows if label is not None})
    if not classes:
        raise DataFileError(f"{train_path}: no labelled rows")
    label_of = {name: i for i, name in enumerate(classes)}
    output = Output(out, dataset, VideoIndex(root))
    output.classes("classes.txt", classes)
    official: dict[str, str] = {}
    for split, (path, clips) in rows.items():
        labelled = [(clip, label) for label, clip in clips if label is not None]
        if not labelled:
            output.report.notes.append(f"{path.name} has no labels: {dataset}/{split}.txt not written")
            continue
        unknown = sorted({label for _, label in labelled if label not in label_of})
        if unknown:
            raise DataFileError(f"{path}: label(s) not in {train_path.name}: {unknown[:10]}")
        official.update({clip: name_key(label) for clip, label in labelled})
        hints = [split, "validate"] if split == "val" else [split]
        output.split(f"{split}.txt", [(clip, label_of[label]) for clip, label in labelled], hints)
    rename = {name_key(name): name for name in classes}
    if dataset == "k400":
        community.base_to_novel(output, splits, rename, official)
    else:
        community.k600_zero_shot(output, splits, rename, official)
    return output.finish()
