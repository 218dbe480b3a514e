"""HMDB51 from its official split files (``testTrainMulti_7030_splits``).

One file per class and split, ``<class>_test_split{1,2,3}.txt``, with a line per video of that
class: ``<video>.avi <id>``, where id 1 puts the video in the training set of that split, 2 in the
test set and 0 in neither. The 51 classes are the file names' class parts, sorted; their names are
written as words (``brush_hair`` -> ``brush hair``).

Written under ``<out>/hmdb51/``: ``classes.txt``, ``train_split{1,2,3}.txt``,
``test_split{1,2,3}.txt``, and ``b2n/...`` with the community files.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from froster.data.prepare import community
from froster.data.prepare.layout import Output, PrepareReport, VideoIndex, name_key, stem, words_from_underscores
from froster.data.textfiles import DataFileError, numbered_lines

SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>[123])\.txt$")
USE = {"1": "train", "2": "test"}  # "0": in neither set


def find_split_files(annotations: Sequence[Path]) -> dict[tuple[str, int], Path]:
    """``(class, split) -> file`` of the first folder of ``annotations`` that has any."""
    for folder in annotations:
        found: dict[tuple[str, int], Path] = {}
        for path in sorted(Path(folder).rglob("*_test_split[123].txt")):
            match = SPLIT_FILE.match(path.name)
            if match is None:  # "_test_split1.txt": the glob's * matched no class name
                continue
            found.setdefault((match["cls"], int(match["split"])), path)
        if found:
            return found
    where = ", ".join(str(f) for f in annotations)
    raise FileNotFoundError(
        f"HMDB51: no '<class>_test_split1.txt' files (testTrainMulti_7030_splits) under {where} "
        "(pass --annotations <folder>)"
    )


def read_split_file(path: Path) -> list[tuple[str, str]]:
    """``(video, "train" | "test" | "")`` of every line of one class's split file."""
    entries, problems = [], []
    for number, line in numbered_lines(path, "HMDB51 split file"):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            problems.append(f"line {number}: expected '<video>.avi 0|1|2', got {line!r}")
            continue
        entries.append((fields[0], USE.get(fields[1], "")))
    if problems:
        raise DataFileError(f"{path}: {len(problems)} bad line(s):\n  " + "\n  ".join(problems[:20]))
    return entries


def prepare_hmdb51(root: Path, out: Path, annotations: Sequence[Path], splits: Sequence[Path]) -> PrepareReport:
    """Prepare HMDB51 (module docstring)."""
    files = find_split_files(annotations)
    published = sorted({cls for cls, _ in files})
    incomplete = sorted(f"{cls}_test_split{k}.txt" for cls in published for k in (1, 2, 3) if (cls, k) not in files)
    if incomplete:
        raise FileNotFoundError(f"HMDB51: split files missing next to the others: {incomplete[:10]}")
    names = [words_from_underscores(cls) for cls in published]
    output = Output(out, "hmdb51", VideoIndex(root))
    output.classes("classes.txt", names)
    official: dict[str, str] = {}
    for k in (1, 2, 3):
        chosen: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
        for label, cls in enumerate(published):
            for video, use in read_split_file(files[(cls, k)]):
                official[stem(video)] = name_key(cls)
                if use:
                    chosen[use].append((video, label))
        for use, entries in chosen.items():
            output.split(f"{use}_split{k}.txt", entries)
    rename = {name_key(cls): name for cls, name in zip(published, names)}
    community.base_to_novel(output, splits, rename, official)
    return output.finish()
