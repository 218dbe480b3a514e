"""What every dataset's preparation shares: finding videos and annotation files, writing outputs.

* :class:`VideoIndex` walks the video folder once and finds a video by its file name without the
  extension (``-abc123_000010_000020``, ``v_ApplyEyeMakeup_g01_c01``, ``78687``), wherever it
  lies: per-class folders, per-split folders or one flat folder, and whatever the container
  (``.mp4``, ``.mkv``, ``.webm``, ``.avi``, ...).
* :func:`find_annotation` finds a publisher's file by name under the folders it may be in.
* :class:`Output` writes the class-name and split files under ``<out>/<dataset>/`` and records
  what was written and what was missing for the summary.

Paths in the written split files are relative to ``out`` (the ``data.root`` of the recipes) when
the videos lie under it, else absolute.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Optional, Sequence, overload

from froster.data.annotations import write_split
from froster.data.classes import write_class_names

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ts", ".3gp"})
_SHOWN = 5  # missing videos named in the printed summary (all of them are in the JSON report)


def name_key(name: str) -> str:
    """Class names compared the way publishers' spellings differ: case, spaces, ``_``, punctuation."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def words_from_camel_case(name: str) -> str:
    """``"ApplyEyeMakeup"`` -> ``"apply eye makeup"`` (UCF101's class names, for text prompts)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name.strip())
    return " ".join(spaced.lower().split())


def words_from_underscores(name: str) -> str:
    """``"brush_hair"`` -> ``"brush hair"`` (HMDB51's class names)."""
    return " ".join(name.replace("_", " ").split())


def stem(name: str) -> str:
    """A listed video's file name without folders and without a video extension."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    root, extension = os.path.splitext(base)
    return root if extension.lower() in VIDEO_EXTENSIONS else base


class VideoIndex:
    """Every video file under ``root``, by :func:`stem`.

    Args:
        root: The folder holding the videos, in any layout.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._by_stem: dict[str, list[str]] = {}
        for directory, _, files in os.walk(self.root, followlinks=True):
            for file in files:
                if os.path.splitext(file)[1].lower() in VIDEO_EXTENSIONS:
                    relative = os.path.relpath(os.path.join(directory, file), self.root).replace(os.sep, "/")
                    self._by_stem.setdefault(stem(file), []).append(relative)
        self.ambiguous: list[str] = []

    def __len__(self) -> int:
        return sum(len(paths) for paths in self._by_stem.values())

    def find(self, listed: str, hints: Sequence[str] = ()) -> Optional[str]:
        """The path under ``root`` of the video ``listed`` names, or None.

        When several files share the stem, the one whose folders include the most of ``hints``
        (e.g. the split, ``"train"``) or of ``listed``'s own folders wins; ties are recorded in
        :attr:`ambiguous`.
        """
        candidates = self._by_stem.get(stem(listed))
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        wanted = {part.lower() for part in [*hints, *listed.replace("\\", "/").split("/")[:-1]] if part}

        def score(path: str) -> int:
            return len(wanted & {part.lower() for part in path.split("/")[:-1]})

        ranked = sorted(candidates, key=lambda path: (-score(path), path))
        if score(ranked[0]) == score(ranked[1]):
            self.ambiguous.append(f"{listed}: {ranked[0]} (also {', '.join(ranked[1:3])})")
        return ranked[0]


@overload
def find_annotation(
    names: Iterable[str], search: Sequence[Path], what: str, required: Literal[True] = True, option: str = "--annotations"
) -> Path: ...
@overload
def find_annotation(
    names: Iterable[str], search: Sequence[Path], what: str, required: bool, option: str = "--annotations"
) -> Optional[Path]: ...


def find_annotation(
    names: Iterable[str], search: Sequence[Path], what: str, required: bool = True, option: str = "--annotations"
) -> Optional[Path]:
    """The one file called one of ``names`` under the ``search`` folders.

    ``option`` is the command-line option that names the folder, for the messages.

    Raises:
        FileNotFoundError: None found (when ``required``), or several candidates: the message
            lists them and asks for the folder.
    """
    names = list(names)
    found: list[Path] = []
    for folder in search:
        for name in names:
            found += Path(folder).rglob(name)
        if found:
            break
    found = sorted(set(found))
    if len(found) > 1:
        listing = "\n  ".join(str(p) for p in found[:10])
        called = " or ".join(repr(name) for name in sorted({p.name for p in found}))
        raise FileNotFoundError(f"{what}: several files called {called}:\n  {listing}\npass {option} <the folder of the one to use>")
    if not found:
        if required:
            where = ", ".join(str(folder) for folder in search)
            wanted = " or ".join(repr(n) for n in names)
            raise FileNotFoundError(f"{what}: no {wanted} under {where} (pass {option} <folder>)")
        return None
    return found[0]


@dataclass
class SplitSummary:
    """One written split file: how many videos it lists and which listed ones were not found."""

    file: str
    listed: int
    written: int
    missing: list[str] = field(default_factory=list)


@dataclass
class PrepareReport:
    """Everything ``froster data prepare`` wrote for one dataset, for the summary and the JSON report."""

    dataset: str
    out: str
    videos_found: int
    classes: dict[str, int] = field(default_factory=dict)
    splits: list[SplitSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label_mismatches: list[str] = field(default_factory=list)

    def split(self, file: str) -> SplitSummary:
        """The summary of a written split, by its file name relative to ``out``."""
        return next(s for s in self.splits if s.file == file)

    def text(self) -> str:
        """The human summary printed by ``froster data prepare``."""
        lines = [f"{self.dataset}: {self.videos_found} video files found; files written under {self.out}"]
        for file, count in self.classes.items():
            lines.append(f"  {file}: {count} classes")
        for split in self.splits:
            line = f"  {split.file}: {split.written} videos"
            if split.missing:
                shown = ", ".join(split.missing[:_SHOWN]) + (", ..." if len(split.missing) > _SHOWN else "")
                line += f" ({len(split.missing)} of {split.listed} listed not found: {shown})"
            lines.append(line)
        if self.label_mismatches:
            count, first = len(self.label_mismatches), self.label_mismatches[0]
            lines.append(f"  {count} video(s) labelled differently by two files, e.g. {first}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


class Output:
    """Writes one dataset's files under ``<out>/<dataset>/`` and keeps the report.

    Args:
        out: The folder the recipes' ``data.root`` points at.
        dataset: Sub-folder name (``k400``, ``ucf101``, ...).
        index: The videos, whose paths the split files list.
    """

    def __init__(self, out: Path, dataset: str, index: VideoIndex):
        self.out, self.dataset, self.index = Path(out), dataset, index
        self.report = PrepareReport(dataset, str(self.out), len(index))
        videos = index.root.resolve()
        out_resolved = self.out.resolve()
        self._prefix = None if videos != out_resolved and out_resolved not in videos.parents else videos.relative_to(out_resolved)

    def _listed_path(self, relative: str) -> str:
        if self._prefix is None:
            return str(self.index.root.resolve() / relative)
        return (self._prefix / relative).as_posix()

    def classes(self, name: str, class_names: Sequence[str]) -> str:
        """Write a class-name file; returns its path relative to ``out``."""
        file = f"{self.dataset}/{name}"
        write_class_names(self.out / file, class_names)
        self.report.classes[file] = len(class_names)
        return file

    def split(self, name: str, listed: Sequence[tuple[str, int]], hints: Sequence[str] = ()) -> Optional[SplitSummary]:
        """Write the videos of ``listed`` (``(name as listed, label)``) that exist; None if none do."""
        entries, missing = [], []
        for video, label in listed:
            found = self.index.find(video, hints)
            if found is None:
                missing.append(video)
            else:
                entries.append((self._listed_path(found), label))
        file = f"{self.dataset}/{name}"
        summary = SplitSummary(file, len(listed), len(entries), missing)
        if not entries:
            self.report.notes.append(f"{file} not written: none of its {len(listed)} listed videos was found")
            return None
        write_split(self.out / file, entries)
        self.report.splits.append(summary)
        return summary

    def finish(self) -> PrepareReport:
        """Write ``<out>/<dataset>/prepare_report.json`` and return the report."""
        if self.index.ambiguous:
            count, first = len(self.index.ambiguous), self.index.ambiguous[0]
            self.report.notes.append(f"{count} listed video(s) matched several files, e.g. {first}")
        path = self.out / self.dataset / "prepare_report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self.report), indent=2) + "\n", encoding="utf-8")
        return self.report
