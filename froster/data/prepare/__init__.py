"""``froster data prepare``: the files datasets ship, turned into the split and class files the recipes name.

>>> report = prepare("ucf101", root="/datasets/UCF101", out="/data/froster")   # doctest: +SKIP
>>> print(report.text())                                                        # doctest: +SKIP

Each dataset is read as its publisher ships it (see the module of each): Kinetics-400/600 from
the official CSVs, UCF101 from ``ucfTrainTestlist``, HMDB51 from ``testTrainMulti_7030_splits``,
Something-Something v2 from its JSON files; with ``splits`` pointing at the community's split
files (published with ViFi-CLIP), also the base-to-novel and K600 zero-shot splits
(:mod:`froster.data.prepare.community`). Videos are found by file name wherever they are under
``root``; listed videos that are not there are left out of the written splits and named in the
report (``<out>/<dataset>/prepare_report.json``).

What is written, relative to ``out`` (the ``data.root`` of every shipped recipe)::

    k400/   classes.txt train.txt val.txt  b2n/{train_s1,train_s2,train_s3,base_val,novel_val,test}.txt
            b2n/{base_classes,novel_classes,classes}.txt
    k600/   classes.txt train.txt val.txt  subset{1,2,3}_test.txt subset{1,2,3}_classes.txt
    ucf101/ classes.txt train_split{1,2,3}.txt test_split{1,2,3}.txt  b2n/...
    hmdb51/ classes.txt train_split{1,2,3}.txt test_split{1,2,3}.txt  b2n/...
    ssv2/   classes.txt train.txt val.txt  b2n/...
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from froster.data.prepare.layout import PrepareReport

PathLike = Union[str, os.PathLike]
DATASETS = ("k400", "k600", "ucf101", "hmdb51", "ssv2")


def prepare(
    name: str,
    root: PathLike,
    out: Optional[PathLike] = None,
    annotations: Optional[PathLike] = None,
    splits: Optional[PathLike] = None,
) -> PrepareReport:
    """Write the split and class files of dataset ``name`` under ``<out>/<name>/``.

    Args:
        name: One of :data:`DATASETS`.
        root: The folder holding the videos (any layout below it).
        out: Where to write; the recipes' ``data.root``. Defaults to ``root``.
        annotations: The folder of the publisher's annotation files; searched under ``root``
            when None.
        splits: The folder of the community split files (a ViFi-CLIP checkout); searched under
            ``annotations`` (or ``root``) when None.

    Returns:
        What was written and what was missing.

    Raises:
        ValueError: An unknown dataset name.
        FileNotFoundError: ``root`` or an annotation file the dataset needs is absent.
        froster.data.DataFileError: An annotation file that cannot be read (file and line named).
        RuntimeError: Not one listed video was found under ``root``.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root}: no such folder (expected the folder of the {name} videos)")
    out = Path(out).expanduser() if out is not None else root
    search = [Path(annotations).expanduser()] if annotations is not None else [root]
    for folder in search:
        if not folder.is_dir():
            raise FileNotFoundError(f"--annotations {folder}: no such folder")
    community = [Path(splits).expanduser()] if splits is not None else search
    if splits is not None and not community[0].is_dir():
        raise FileNotFoundError(f"--splits {community[0]}: no such folder")
    if name in ("k400", "k600"):
        from froster.data.prepare.kinetics import prepare_kinetics

        report = prepare_kinetics(name, root, out, search, community)
    else:
        module = __import__(f"froster.data.prepare.{name}", fromlist=["_"])
        report = getattr(module, f"prepare_{name}")(root, out, search, community)
    if not any(split.written for split in report.splits):
        raise RuntimeError(
            f"{name}: none of the listed videos was found under {root} ({report.videos_found} video files there); "
            "is --root the folder of the videos?"
        )
    return report


__all__ = ["DATASETS", "PrepareReport", "prepare"]
