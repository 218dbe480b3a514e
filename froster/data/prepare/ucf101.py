"""UCF101 from its official split lists (``ucfTrainTestlist``).

* ``classInd.txt``: ``1 ApplyEyeMakeup`` ... ``101 YoYo`` (1-based ids).
* ``trainlist0{1,2,3}.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1`` (the 1-based label).
* ``testlist0{1,2,3}.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`` -- no label: the class
  is the folder.

Class names are written as words (``ApplyEyeMakeup`` -> ``apply eye makeup``) so that text prompts
read naturally; the order is ``classInd.txt``'s. Written under ``<out>/ucf101/``: ``classes.txt``,
``train_split{1,2,3}.txt``, ``test_split{1,2,3}.txt``, and ``b2n/...`` with the community files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from froster.data.classes import read_class_names
from froster.data.prepare import community
from froster.data.prepare.layout import Output, PrepareReport, VideoIndex, find_annotation, name_key, stem, words_from_camel_case
from froster.data.textfiles import DataFileError, numbered_lines

SPLITS = (1, 2, 3)


def _folder(listed: str) -> str:
    parts = listed.replace("\\", "/").split("/")
    return parts[-2] if len(parts) > 1 else ""


def read_list(path: Path, class_of_folder: dict[str, int], labelled: bool) -> list[tuple[str, int]]:
    """``(video, 0-based label)`` of a train or test list.

    Raises:
        DataFileError: A line whose folder is no class, or whose label disagrees with its folder.
    """
    entries, problems = [], []
    for number, line in numbered_lines(path, "UCF101 split list"):
        fields = line.split()
        video = fields[0]
        from_folder = class_of_folder.get(name_key(_folder(video)))
        if labelled and len(fields) > 1:
            if not fields[1].isdigit() or not 1 <= int(fields[1]) <= len(class_of_folder):
                problems.append(f"line {number}: label {fields[1]!r} is not a class id of classInd.txt")
                continue
            label = int(fields[1]) - 1
            if from_folder is not None and from_folder != label:
                problems.append(f"line {number}: label {fields[1]} but folder {_folder(video)!r}")
                continue
        elif from_folder is None:
            problems.append(f"line {number}: folder {_folder(video)!r} of {video!r} is not a class of classInd.txt")
            continue
        else:
            label = from_folder
        entries.append((video, label))
    if problems:
        raise DataFileError(f"{path}: {len(problems)} bad line(s):\n  " + "\n  ".join(problems[:20]))
    return entries


def prepare_ucf101(root: Path, out: Path, annotations: Sequence[Path], splits: Sequence[Path]) -> PrepareReport:
    """Prepare UCF101 (module docstring)."""
    index_file = find_annotation(["classInd.txt"], annotations, "UCF101 class index")
    published = read_class_names(index_file)  # CamelCase, in label order
    class_of_folder = {name_key(name): i for i, name in enumerate(published)}
    names = [words_from_camel_case(name) for name in published]
    output = Output(out, "ucf101", VideoIndex(root))
    output.classes("classes.txt", names)
    official: dict[str, str] = {}
    for k in SPLITS:
        for kind, labelled in (("train", True), ("test", False)):
            path = find_annotation([f"{kind}list0{k}.txt"], [index_file.parent, *annotations], f"UCF101 {kind} list {k}")
            entries = read_list(path, class_of_folder, labelled)
            official.update({stem(video): name_key(published[label]) for video, label in entries})
            output.split(f"{kind}_split{k}.txt", entries)
    rename = {name_key(name): readable for name, readable in zip(published, names)}
    community.base_to_novel(output, splits, rename, official)
    return output.finish()
