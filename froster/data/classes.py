"""Class-name files and the JSON of LLM-rephrased class descriptions.

Class-name files come in the shapes datasets ship:

* one name per line, in class order (``abseiling``, ``air drumming``, ...);
* ``id,name`` CSV lines with an optional ``id,name`` header (Kinetics' label CSVs);
* ``id name`` lines (UCF101's ``classInd.txt``, whose ids start at 1).

A file is read as ``id,name`` (parsed as CSV, so quoted names may hold commas) when *every* line
starts with an integer and a comma, or as ``id name`` when every line starts with an integer and
a space, and only if the ids are exactly ``0..K-1`` or ``1..K`` (in any order); the names are then
put in id order and 1-based ids become 0-based. Anything else is one name per line, so a class
called ``10 pin bowling`` in a plain list is still read as a name. A name listed twice (ignoring
case and runs of whitespace) is an error naming both lines; so is an empty file, and a file that is
not UTF-8 (its first bad line named). :func:`parse_class_list` applies the same rules to a
comma-separated list such as ``--classes "a,b,c"``.

Descriptions JSON (the paper replaces class names by one-sentence descriptions written by an LLM)
is an object mapping every class name to its description::

    {"abseiling": "A person descends a rock face on a rope.", "air drumming": "..."}

or a list of descriptions in class order::

    ["A person descends a rock face on a rope.", "..."]

or a released FROSTER label file, keyed by class index (see :func:`read_class_prompts`)::

    {"0": "Abseiling: A person descends a rock face on a rope.", "1": "..."}

An object of names must name exactly the classes of the class-name file (names are compared
after stripping whitespace and ignoring case); a list must have one entry per class, a label file
one per class index. Every entry must be a non-empty string. Mismatches are reported all at once.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from froster.data.textfiles import DataFileError, numbered_lines, read_text
from froster.text import ClassText, class_texts_from

PathLike = Union[str, os.PathLike]

_ID_COMMA = re.compile(r"^\s*(\d+)\s*,")
_ID_SPACE = re.compile(r"^\s*(\d+)\s+(\S.*)$")


class ClassFileError(DataFileError):
    """A class-name file that is empty, lists a name twice, or is not UTF-8."""


class ClassListError(ValueError):
    """A comma-separated list of class names with an empty or repeated name."""


def read_class_names(path: PathLike) -> list[str]:
    """Read class names in class-index order from a name list or an ``id,name`` file.

    Args:
        path: The class-name file (see the module docstring for the accepted forms).

    Returns:
        The ``K`` names; ``names[i]`` is the class with label ``i``.

    Raises:
        ClassFileError: An empty file, a name listed twice (both lines named; names are compared
            ignoring case and runs of whitespace), or bytes that are not UTF-8 (line named).
    """
    try:
        lines = numbered_lines(path, "class-name file")
    except DataFileError as error:
        raise ClassFileError(str(error)) from None
    if not lines:
        raise ClassFileError(f"{path}: no class names (expected one name per line, or 'id,name' lines)")
    if not _ID_COMMA.match(lines[0][1]) and "," in lines[0][1] and len(lines) > 1:
        # An `id,name` header is only a header if the rest of the file is `id,name` lines.
        if all(_ID_COMMA.match(text) for _, text in lines[1:]):
            lines = lines[1:]
    named = _id_ordered(lines)
    if named is None:
        named = lines
    first_line: dict[str, int] = {}
    repeated = []
    for number, name in named:
        if _key(name) in first_line:
            repeated.append(f"{name!r} on line {number} (first on line {first_line[_key(name)]})")
        first_line.setdefault(_key(name), number)
    if repeated:
        raise ClassFileError(f"{path}: class name(s) listed more than once: " + "; ".join(repeated[:20]))
    return [name for _, name in named]


def _id_ordered(lines: Sequence[tuple[int, str]]) -> Optional[list[tuple[int, str]]]:
    """``(line, name)`` in id order when every line is ``id,name`` (CSV, quotes allowed) or
    ``id name`` with ids ``0..K-1`` or ``1..K``; else None."""
    if all(_ID_COMMA.match(text) for _, text in lines):
        rows = [(number, next(csv.reader([text], skipinitialspace=True))) for number, text in lines]
        parsed = [(int(row[0]), number, ",".join(row[1:]).strip()) for number, row in rows]
    elif all(_ID_SPACE.match(text) for _, text in lines):
        matches = [(number, _ID_SPACE.match(text)) for number, text in lines]
        parsed = [(int(m.group(1)), number, m.group(2).strip()) for number, m in matches if m is not None]  # all match
    else:
        return None
    if any(not name for _, _, name in parsed):
        return None
    by_id = {class_id: (number, name) for class_id, number, name in parsed}
    if len(by_id) != len(parsed):
        return None
    for first in (0, 1):
        if sorted(by_id) == list(range(first, first + len(parsed))):
            return [by_id[i] for i in range(first, first + len(parsed))]
    return None


def parse_class_list(spec: str) -> list[str]:
    """Class names from a class-name file or from a comma-separated list (``"a,b,c"``).

    The list obeys the rules of a file: no empty names, no name twice (ignoring case and runs of
    whitespace).

    Raises:
        ClassFileError: A bad class-name file (see :func:`read_class_names`).
        ClassListError: An empty list, an empty entry or a repeated name in the list.
        FileNotFoundError: ``spec`` looks like a file name (a path separator or a ``.txt``,
            ``.csv`` or ``.json`` ending, no comma) but no such file exists.
    """
    if os.path.isfile(spec):
        return read_class_names(spec)
    looks_like_path = os.sep in spec or spec.lower().endswith((".txt", ".csv", ".json"))
    if "," not in spec and looks_like_path:
        raise FileNotFoundError(f"class-name file {spec!r} not found (or give the names as 'a,b,c')")
    entries = [entry.strip() for entry in spec.split(",")]
    if not any(entries):
        raise ClassListError(f"no class names in {spec!r}; give them as 'a,b,c' or as a class-name file")
    empty = [i for i, entry in enumerate(entries, start=1) if not entry]
    if empty:
        raise ClassListError(f"empty class name at position(s) {empty} of {spec!r}")
    seen: dict[str, int] = {}
    repeated = []
    for position, name in enumerate(entries, start=1):
        if _key(name) in seen:
            repeated.append(f"{name!r} at position {position} (first at {seen[_key(name)]})")
        seen.setdefault(_key(name), position)
    if repeated:
        raise ClassListError(f"class name(s) listed more than once in {spec!r}: " + "; ".join(repeated))
    return entries


def _key(name: str) -> str:
    return " ".join(name.split()).lower()


def read_descriptions(path: PathLike, class_names: Sequence[str]) -> list[str]:
    """Read LLM-rephrased class descriptions and return them in class order.

    Args:
        path: A JSON object ``{class name: description}``, a JSON list in class order, or the
            released FROSTER label file ``{"0": "<name>: <description>", ...}`` keyed by class
            index (see :func:`read_class_prompts`).
        class_names: The ``K`` class names the descriptions must cover.

    Returns:
        ``K`` descriptions; ``descriptions[i]`` describes class ``i``.

    Raises:
        ValueError: Names missing from or unknown to the object, a list of the wrong length, or
            entries that are not non-empty strings, all listed in one message; a
            :class:`DataFileError` for a file that is not UTF-8 or not JSON (line named).
    """
    path = Path(path)
    try:
        data = json.loads(read_text(path, "descriptions file"))
    except json.JSONDecodeError as error:
        raise DataFileError(f"{path}: line {error.lineno}, column {error.colno}: not valid JSON ({error.msg})") from None
    problems: list[str] = []
    absent: set[int] = set()  # classes already reported as missing
    indexed = _index_keyed(data, class_names, path)
    if indexed is not None:
        return [description for _, description in indexed]
    if isinstance(data, dict):
        by_key = {_key(str(name)): text for name, text in data.items()}
        wanted = {_key(name): name for name in class_names}
        missing = [name for key, name in wanted.items() if key not in by_key]
        unknown = [name for name in data if _key(str(name)) not in wanted]
        if missing:
            problems.append(f"no description for {len(missing)} class(es): {missing[:20]}")
        if unknown:
            problems.append(f"descriptions of {len(unknown)} unknown class(es): {unknown[:20]}")
        texts: list[Any] = [by_key.get(_key(name)) for name in class_names]  # JSON values, checked below
        absent = {i for i, name in enumerate(class_names) if _key(name) not in by_key}
    elif isinstance(data, list):
        if len(data) != len(class_names):
            problems.append(f"a list of {len(data)} descriptions for {len(class_names)} classes")
        texts = list(data)
    else:
        raise ValueError(f"{path}: expected a JSON object or list, got {type(data).__name__}")
    bad = [i for i, text in enumerate(texts) if i not in absent and not (isinstance(text, str) and text.strip())]
    if bad:
        problems.append(f"entries for class(es) {bad[:20]} are not non-empty strings")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return [text.strip() for text in texts]


def _index_keyed(data: object, class_names: Sequence[str], path: Path) -> Optional[list[tuple[str, str]]]:
    """``[(name, description)]`` of a released FROSTER label file, ``None`` for any other JSON.

    Those files map every class index ``"0" .. "K-1"`` to ``"<name>: <description>"``
    (``{"0": "Apply Eye Makeup: This video demonstrates ...", ...}``).
    """
    if not isinstance(data, dict) or not data or not all(str(k).isdigit() for k in data):
        return None
    if sorted(int(k) for k in data) != list(range(len(class_names))):
        raise DataFileError(f"{path}: a label file keyed by class index must have the keys 0..{len(class_names) - 1}, got {len(data)} keys")
    entries = []
    for index in range(len(class_names)):
        text = data.get(str(index))
        if not isinstance(text, str) or not text.strip():
            raise DataFileError(f"{path}: entry {index} of the label file is not a non-empty string")
        name, colon, description = text.partition(":")
        entries.append((name.strip(), description.strip()) if colon and description.strip() else (class_names[index], text.strip()))
    return entries


def read_class_prompts(class_names: Sequence[str], descriptions: Optional[PathLike] = None) -> list[ClassText]:
    """What stands for each class in prompts (:class:`froster.text.ClassText`), in class order.

    Without ``descriptions`` each class is its name. With a descriptions JSON (any form of
    :func:`read_descriptions`), each class also gets its description; a released FROSTER label
    file (``{"0": "<name>: <description>"}``) also gives the name its prompts use, as the released
    code builds them (``Apply Eye Makeup`` where the class file says ``ApplyEyeMakeup``).
    """
    if descriptions is None:
        return class_texts_from(class_names)
    path = Path(descriptions)
    try:
        data = json.loads(read_text(path, "descriptions file"))
    except json.JSONDecodeError:
        data = None  # read_descriptions names the line
    indexed = _index_keyed(data, class_names, path)
    if indexed is not None:
        return [ClassText(name, description) for name, description in indexed]
    return class_texts_from(class_names, read_descriptions(path, class_names))


def write_class_names(path: PathLike, class_names: Sequence[str]) -> Path:
    """Write one class name per line, in class order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in class_names), encoding="utf-8")
    return path


