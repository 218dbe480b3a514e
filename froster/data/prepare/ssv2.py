"""Something-Something v2 from its official JSON files.

* ``labels.json``: ``{"Approaching something with your camera": "0", ...}``, the 174 templates
  with the brackets removed, mapped to their class ids (as strings).
* ``train.json`` / ``validation.json``: ``[{"id": "78687", "label": "holding potato next to vicks
  vaporub bottle", "template": "Holding [something] next to [something]", "placeholders": [...]},
  ...]``; the class is the template with its brackets removed. ``test.json`` has no labels.
* The videos are ``<id>.webm``.

The 20BN release names the files ``something-something-v2-{labels,train,validation}.json``; both
names are accepted. Class names are the templates without brackets, in id order. Written under
``<out>/ssv2/``: ``classes.txt``, ``train.txt``, ``val.txt``, and ``b2n/...`` with the community
files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from froster.data.prepare import community
from froster.data.prepare.layout import Output, PrepareReport, VideoIndex, find_annotation, name_key
from froster.data.textfiles import DataFileError, read_text

FILES = {
    "labels": ("labels.json", "something-something-v2-labels.json"),
    "train": ("train.json", "something-something-v2-train.json"),
    "val": ("validation.json", "something-something-v2-validation.json"),
}


def template_class(template: str) -> str:
    """``"Holding [something] next to [something]"`` -> ``"Holding something next to something"``."""
    return template.replace("[", "").replace("]", "")


def _json(path: Path):
    try:
        return json.loads(read_text(path, "Something-Something JSON file"))
    except json.JSONDecodeError as error:
        raise DataFileError(f"{path}: line {error.lineno}, column {error.colno}: not valid JSON ({error.msg})") from None


def read_labels(path: Path) -> list[str]:
    """The class names in id order."""
    data = _json(path)
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected an object {{template: id}}, got {type(data).__name__}")
    try:
        by_id = {int(class_id): name for name, class_id in data.items()}
    except (TypeError, ValueError):
        raise DataFileError(f"{path}: expected integer class ids ({{template: \"0\", ...}})") from None
    if sorted(by_id) != list(range(len(data))):  # a repeated id leaves by_id shorter than data
        raise DataFileError(f"{path}: class ids are not 0..{len(data) - 1}, each once")
    return [by_id[i] for i in range(len(by_id))]


def read_videos(path: Path, label_of: dict[str, int]) -> list[tuple[str, int]]:
    """``(video id, label)`` of a train or validation file."""
    data = _json(path)
    if not isinstance(data, list):
        raise DataFileError(f"{path}: expected a list of videos, got {type(data).__name__}")
    entries, unknown = [], []
    for item in data:
        template = template_class(str(item.get("template", ""))) if isinstance(item, dict) else ""
        if template not in label_of:
            unknown.append(item.get("id") if isinstance(item, dict) else item)
            continue
        entries.append((str(item["id"]), label_of[template]))
    if unknown:
        raise DataFileError(f"{path}: {len(unknown)} video(s) whose template is not in the labels file, e.g. id {unknown[0]!r}")
    return entries


def prepare_ssv2(root: Path, out: Path, annotations: Sequence[Path], splits: Sequence[Path]) -> PrepareReport:
    """Prepare Something-Something v2 (module docstring)."""
    classes = read_labels(find_annotation(FILES["labels"], annotations, "SSv2 labels"))
    label_of = {name: i for i, name in enumerate(classes)}
    output = Output(out, "ssv2", VideoIndex(root))
    output.classes("classes.txt", classes)
    official: dict[str, str] = {}
    for split in ("train", "val"):
        entries = read_videos(find_annotation(FILES[split], annotations, f"SSv2 {split} file"), label_of)
        official.update({video: name_key(classes[label]) for video, label in entries})
        output.split(f"{split}.txt", entries)
    community.base_to_novel(output, splits, {name_key(name): name for name in classes}, official)
    return output.finish()
