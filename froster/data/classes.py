"""Class-name files and the JSON of LLM-rephrased class descriptions.

Class-name files come in the shapes datasets ship:

* one name per line, in class order (``abseiling``, ``air drumming``, ...);
* ``id,name`` CSV lines with an optional ``id,name`` header (Kinetics' label CSVs);
* ``id name`` lines (UCF101's ``classInd.txt``, whose ids start at 1).

A file is read as ``id name`` only when *every* line starts with an integer followed by a comma or
a space and the ids are exactly ``0..K-1`` or ``1..K`` (in any order); the names are then put in id
order and 1-based ids become 0-based. Anything else is one name per line, so a class called
``10 pin bowling`` in a plain list is still read as a name.

Descriptions JSON (the paper replaces class names by one-sentence descriptions written by an LLM)
is either an object mapping every class name to its description::

    {"abseiling": "A person descends a rock face on a rope.", "air drumming": "..."}

or a list of descriptions in class order::

    ["A person descends a rock face on a rope.", "..."]

An object must name exactly the classes of the class-name file (names are compared after
stripping whitespace and ignoring case); a list must have one entry per class. Every entry must be a
non-empty string. Mismatches are reported all at once.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Union

PathLike = Union[str, os.PathLike]

_ID_NAME = re.compile(r"^\s*(\d+)\s*[,\s]\s*(.*\S)\s*$")


def read_class_names(path: PathLike) -> list[str]:
    """Read class names in class-index order from a name list or an ``id,name`` file.

    Args:
        path: The class-name file (see the module docstring for the accepted forms).

    Returns:
        The ``K`` names; ``names[i]`` is the class with label ``i``.

    Raises:
        ValueError: An empty file or a name listed twice.
    """
    path = Path(path)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if lines and not _ID_NAME.match(lines[0]) and "," in lines[0]:
        # An `id,name` header is only a header if the rest of the file is `id,name` lines.
        rest = lines[1:]
        if rest and all(_ID_NAME.match(line) for line in rest):
            lines = rest
    names = _id_ordered(lines)
    if names is None:
        names = lines
    if not names:
        raise ValueError(f"{path}: no class names")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{path}: class name(s) listed more than once: {repeated}")
    return names


def _id_ordered(lines: Sequence[str]) -> Optional[list[str]]:
    """Names in id order when every line is ``id name`` with ids ``0..K-1`` or ``1..K``, else None."""
    matches = [_ID_NAME.match(line) for line in lines]
    if not lines or not all(matches):
        return None
    by_id = {int(m.group(1)): m.group(2).strip() for m in matches}
    if len(by_id) != len(lines):
        return None
    for first in (0, 1):
        if sorted(by_id) == list(range(first, first + len(lines))):
            return [by_id[i] for i in range(first, first + len(lines))]
    return None


def _key(name: str) -> str:
    return " ".join(name.split()).lower()


def read_descriptions(path: PathLike, class_names: Sequence[str]) -> list[str]:
    """Read LLM-rephrased class descriptions and return them in class order.

    Args:
        path: A JSON object ``{class name: description}`` or a JSON list in class order.
        class_names: The ``K`` class names the descriptions must cover.

    Returns:
        ``K`` descriptions; ``descriptions[i]`` describes class ``i``.

    Raises:
        ValueError: Names missing from or unknown to the object, a list of the wrong length, or
            entries that are not non-empty strings, all listed in one message.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    problems: list[str] = []
    absent: set[int] = set()  # classes already reported as missing
    if isinstance(data, dict):
        by_key = {_key(str(name)): text for name, text in data.items()}
        wanted = {_key(name): name for name in class_names}
        missing = [name for key, name in wanted.items() if key not in by_key]
        unknown = [name for name in data if _key(str(name)) not in wanted]
        if missing:
            problems.append(f"no description for {len(missing)} class(es): {missing[:20]}")
        if unknown:
            problems.append(f"descriptions of {len(unknown)} unknown class(es): {unknown[:20]}")
        texts = [by_key.get(_key(name)) for name in class_names]
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


def write_class_names(path: PathLike, class_names: Sequence[str]) -> Path:
    """Write one class name per line, in class order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in class_names), encoding="utf-8")
    return path


def class_texts(class_names: Sequence[str], descriptions: Optional[PathLike] = None) -> list[str]:
    """The text that stands for each class in prompts: its description when given, else its name.

    Args:
        class_names: The ``K`` class names.
        descriptions: Optional descriptions JSON (see :func:`read_descriptions`).
    """
    if descriptions is None:
        return list(class_names)
    return read_descriptions(descriptions, class_names)
