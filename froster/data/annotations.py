"""Split files: the lists of ``path label`` lines that action-recognition datasets ship.

Two line forms are understood, and may even be mixed in one file:

* ``relative/path.mp4 12`` -- split at the *last* run of whitespace, so paths with spaces work
  (PySlowFast's ``train.csv`` files are of this form despite their extension);
* ``relative/path.mp4,12`` -- split at the last comma, as a CSV ``path,label`` file writes it.

A line is split at its last comma when what follows the comma is an integer, otherwise at its last
whitespace. The first non-blank line is a header (``path,label``) and skipped when its label field
is not an integer; blank lines and lines starting with ``#`` are ignored everywhere. Labels are
0-based class indices. Paths are relative to a data root (absolute paths are kept as they are).

Every problem is reported with the file name and the 1-based line number, and all problems of a
file are reported together, so a bad split is fixed in one pass rather than one error at a time.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from froster.data.textfiles import DataFileError, numbered_lines

PathLike = Union[str, os.PathLike]

ON_MISSING = ("error", "skip", "ignore")
# What a user can do about missing videos, from the command line and from Python.
_MISSING_HINT = (
    "(write a split of the videos that are there with `froster data check SPLIT --root ROOT --clean "
    "NEW_SPLIT`, or in Python leave them out with VideoDataConfig(on_missing='skip'))"
)
# How many offending lines an error message lists before it summarises the rest.
_MAX_LISTED = 20


@dataclass(frozen=True)
class VideoRecord:
    """One line of a split file.

    Attributes:
        path: Full path of the video (the data root joined with the listed path).
        label: 0-based class index.
        line: 1-based line number in the split file, for error messages.
    """

    path: str
    label: int
    line: int


class SplitFileError(DataFileError):
    """A split file is empty, not UTF-8, or has malformed lines or labels out of range."""


class MissingVideosError(FileNotFoundError):
    """Videos listed in a split file do not exist under the data root."""

    def __init__(self, message: str, missing: Sequence[VideoRecord]):
        super().__init__(message)
        self.missing = list(missing)


def _parse_int(text: str) -> Optional[int]:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return None


def _split_line(line: str) -> tuple[str, Optional[str]]:
    """``"a b.mp4 3"`` -> ``("a b.mp4", "3")``; the label field is None for a one-field line."""
    if "," in line:
        head, _, tail = line.rpartition(",")
        if _parse_int(tail) is not None:
            return head.strip(), tail.strip()
    parts = line.rsplit(None, 1)
    if len(parts) == 2:
        return parts[0].strip(), parts[1]
    if "," in line:  # a CSV line whose label field is not an integer, e.g. a header
        head, _, tail = line.rpartition(",")
        return head.strip(), tail.strip()
    return line, None


def _listing(problems: Sequence[str]) -> str:
    shown = "\n".join(f"  {p}" for p in problems[:_MAX_LISTED])
    more = len(problems) - _MAX_LISTED
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


def read_split(
    split_file: PathLike,
    root: Optional[PathLike] = None,
    num_classes: Optional[int] = None,
    on_missing: str = "error",
) -> list[VideoRecord]:
    """Parse a split file into records, checking labels and that the videos exist.

    Args:
        split_file: The ``path label`` (or ``path,label``) file.
        root: Directory the listed paths are relative to; defaults to the split file's directory.
        num_classes: When given, labels outside ``[0, num_classes)`` are errors.
        on_missing: What to do with listed videos that do not exist: ``"error"`` raises one
            :class:`MissingVideosError` listing every missing file with its line number;
            ``"skip"`` drops them with one warning that lists them; ``"ignore"`` does not look at
            the file system at all (for slow network file systems; a missing video is then
            skipped and counted when it is read, like a corrupt one).

    Returns:
        The records in file order.

    Raises:
        SplitFileError: Malformed lines or out-of-range labels, all listed with line numbers; no
            line at all; bytes that are not UTF-8 (the line named).
        MissingVideosError: Missing videos when ``on_missing="error"``.
    """
    if on_missing not in ON_MISSING:
        raise ValueError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
    split_file = Path(split_file)
    root = Path(root) if root is not None else split_file.parent
    records: list[VideoRecord] = []
    problems: list[str] = []
    try:
        lines = numbered_lines(split_file, "split file")
    except DataFileError as error:
        raise SplitFileError(str(error)) from None
    for position, (number, line) in enumerate(lines):
        path, field = _split_line(line)
        label = _parse_int(field) if field is not None else None
        if label is None:
            if position == 0 and field is not None:  # a header such as `path,label`
                continue
            problems.append(f"line {number}: expected 'path label' or 'path,label', got {line!r}")
        elif not path:
            problems.append(f"line {number}: empty path in {line!r}")
        elif label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else "non-negative"
            problems.append(f"line {number}: label {label} is not {bound}")
        else:
            records.append(VideoRecord(os.path.join(root, path), label, number))
    if problems:
        raise SplitFileError(f"{split_file}: {len(problems)} bad line(s):\n{_listing(problems)}")
    if not records:
        raise SplitFileError(f"{split_file}: no videos listed (expected 'path label' lines)")
    if on_missing == "ignore":
        return records
    missing = [r for r in records if not os.path.isfile(r.path)]
    if not missing:
        return records
    listing = _listing([f"line {r.line}: {r.path}" for r in missing])
    message = f"{split_file}: {len(missing)} of {len(records)} listed video(s) not found under {root}:\n{listing}"
    if on_missing == "error":
        raise MissingVideosError(message + f"\n{_MISSING_HINT}", missing)
    warnings.warn(message + "\n(left out)", stacklevel=2)
    missing_lines = {r.line for r in missing}
    return [r for r in records if r.line not in missing_lines]


def write_split(split_file: PathLike, entries: Sequence[tuple[str, int]]) -> Path:
    """Write ``(relative path, label)`` pairs as a ``path label`` split file.

    Args:
        split_file: Where to write.
        entries: Pairs in the order they should appear.

    Returns:
        The path written.
    """
    split_file = Path(split_file)
    split_file.parent.mkdir(parents=True, exist_ok=True)
    with open(split_file, "w", encoding="utf-8") as handle:
        for path, label in entries:
            handle.write(f"{path} {int(label)}\n")
    return split_file
