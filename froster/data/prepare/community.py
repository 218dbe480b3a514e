"""The base-to-novel and K600 zero-shot split files the community uses, read as they are published.

They come with ViFi-CLIP (https://github.com/muzairkhattak/ViFi-CLIP, folders ``datasets_splits/``
and ``labels/``), and Open-VCLIP and FROSTER evaluate on them; this library does not ship them.
Point ``--splits`` at a checkout of that repository (or at any folder holding those two folders):

* base-to-novel, for ``k400``, ``hmdb51``, ``ucf101``, ``ssv2``:
  ``datasets_splits/base2novel_splits/{k400,hmdb,ucf,ssv2}_splits/`` with
  ``fs_base_s{1,2,3}_train.txt`` (16 videos per base class, three draws), ``base_val.txt`` and
  ``novel_val.txt``; labels index ``labels/{kinetics_400,hmdb_51,ucf_101,ssv2_174}_{base,novel}_labels.csv``
  (``id,name``), the base side for the training and ``base_val`` files, the novel side for
  ``novel_val``.
* K600 zero-shot: ``datasets_splits/k600_splits/ZS_split{1,2,3}_K600_eval.txt`` with labels in
  ``labels/ZS_split{1,2,3}_K600.csv``: three subsets of 160 Kinetics-600 classes absent from
  Kinetics-400.

Lines are ``path label``; Kinetics paths are ``<split folder>/<youtube_id>_<start>_<end>.mp4``, the
others bare file names. Each listed video is found by its name among the prepared dataset's videos
(whatever their folders and container), and every label is checked against the dataset's own
annotations where those label the same video.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

from froster.data.annotations import read_split
from froster.data.classes import read_class_names
from froster.data.prepare.layout import Output, find_annotation, name_key, stem

# dataset -> (folder of its base-to-novel split files, prefix of its label CSVs)
BASE_TO_NOVEL = {
    "k400": ("k400_splits", "kinetics_400"),
    "hmdb51": ("hmdb_splits", "hmdb_51"),
    "ucf101": ("ucf_splits", "ucf_101"),
    "ssv2": ("ssv2_splits", "ssv2_174"),
}
SPLITS = (1, 2, 3)


def _find(search: Sequence[Path], pattern: str) -> Optional[Path]:
    for folder in search:
        found = sorted(Path(folder).rglob(pattern))
        if found:
            return found[0]
    return None


def _listing(path: Path) -> list[tuple[str, int]]:
    """``(path as listed, label)`` of a community split file."""
    return [(os.path.normpath(r.path), r.label) for r in read_split(path, root="", on_missing="ignore")]


def _readable(names: Sequence[str], rename: Mapping[str, str]) -> list[str]:
    """The dataset's own spelling of each community class name, where the two match."""
    return [rename.get(name_key(name), name) for name in names]


def _check_labels(output: Output, file: Path, listed, names: Sequence[str], official: Mapping[str, str]) -> None:
    for video, label in listed:
        truth = official.get(stem(video))
        if truth is not None and label < len(names) and truth != name_key(names[label]):
            output.report.label_mismatches.append(f"{file.name}: {video} is {names[label]!r} there, {truth!r} in the dataset")


def _check_range(file: Path, listed, names: Sequence[str], labels_file: Path) -> None:
    bad = [(video, label) for video, label in listed if not 0 <= label < len(names)]
    if bad:
        from froster.data.textfiles import DataFileError

        raise DataFileError(f"{file}: label(s) outside the {len(names)} classes of {labels_file.name}, e.g. {bad[0]}")


def base_to_novel(
    output: Output, search: Sequence[Path], rename: Mapping[str, str], official: Mapping[str, str]
) -> None:
    """Write ``<dataset>/b2n/``: ``train_s{1,2,3}.txt``, ``base_val.txt``, ``novel_val.txt``, their
    class files, and ``test.txt`` + ``classes.txt`` (base then novel classes, for a single eval set
    with ``base_classes``).

    Args:
        output: Where to write (its ``dataset`` selects the files).
        search: Folders to look for the community files in.
        rename: ``name_key(name) -> the dataset's own class name``.
        official: ``video stem -> name_key(class)`` from the dataset's annotations, to check labels.
    """
    folder, prefix = BASE_TO_NOVEL[output.dataset]
    first = _find(search, f"{folder}/fs_base_s1_train.txt")
    if first is None:
        where = ", ".join(str(s) for s in search)
        output.report.notes.append(
            f"no base-to-novel split files ({folder}/fs_base_s1_train.txt) under {where}: b2n files not written "
            "(they come with ViFi-CLIP, see docs/data.md; pass --splits <its checkout>)"
        )
        return
    sides = {}
    for side in ("base", "novel"):
        labels_file = find_annotation([f"{prefix}_{side}_labels.csv"], search, f"{output.dataset} {side} labels", option="--splits")
        sides[side] = (labels_file, read_class_names(labels_file))
    base_names = _readable(sides["base"][1], rename)
    novel_names = _readable(sides["novel"][1], rename)
    output.classes("b2n/base_classes.txt", base_names)
    output.classes("b2n/novel_classes.txt", novel_names)
    output.classes("b2n/classes.txt", base_names + novel_names)
    files = {f"train_s{k}": f"fs_base_s{k}_train.txt" for k in SPLITS} | {"base_val": "base_val.txt", "novel_val": "novel_val.txt"}
    listed = {}
    for name, published in files.items():
        path = first.parent / published
        if not path.is_file():
            output.report.notes.append(f"{path} not found: {output.dataset}/b2n/{name}.txt not written")
            continue
        side = "novel" if name == "novel_val" else "base"
        listed[name] = _listing(path)
        _check_range(path, listed[name], sides[side][1], sides[side][0])
        _check_labels(output, path, listed[name], sides[side][1], official)
        hints = ["val", "validate"] if name.endswith("val") else ["train"]
        output.split(f"b2n/{name}.txt", listed[name], hints)
    if "base_val" in listed and "novel_val" in listed:
        offset = len(base_names)
        combined = listed["base_val"] + [(video, label + offset) for video, label in listed["novel_val"]]
        output.split("b2n/test.txt", combined, ["val", "validate"])


def k600_zero_shot(output: Output, search: Sequence[Path], rename: Mapping[str, str], official: Mapping[str, str]) -> None:
    """Write ``k600/subset{1,2,3}_test.txt`` and ``subset{1,2,3}_classes.txt`` (160 classes each)."""
    found = False
    for k in SPLITS:
        path = _find(search, f"ZS_split{k}_K600_eval.txt")
        if path is None:
            continue
        found = True
        labels_file = find_annotation([f"ZS_split{k}_K600.csv"], search, f"K600 zero-shot split {k} labels", option="--splits")
        names = read_class_names(labels_file)
        listed = _listing(path)
        _check_range(path, listed, names, labels_file)
        _check_labels(output, path, listed, names, official)
        output.classes(f"subset{k}_classes.txt", _readable(names, rename))
        output.split(f"subset{k}_test.txt", listed)
    if not found:
        where = ", ".join(str(s) for s in search)
        output.report.notes.append(
            f"no K600 zero-shot split files (ZS_split1_K600_eval.txt) under {where}: subset files not written "
            "(they come with ViFi-CLIP, see docs/data.md; pass --splits <its checkout>)"
        )
