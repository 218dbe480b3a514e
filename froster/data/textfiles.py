"""Reading the small text files of a dataset (splits, class names, descriptions) as UTF-8.

Every problem with such a file is a :class:`DataFileError` (a ``ValueError``) whose message names
the file and, where there is one, the 1-based line: a file that is not UTF-8 points at the first
line that is not, so it can be found and re-encoded.
"""
from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


class DataFileError(ValueError):
    """A split, class-name, description or annotation file that cannot be used as it is."""


def read_text(path: PathLike, what: str = "file") -> str:
    """The text of a UTF-8 file (a leading byte-order mark is dropped).

    Args:
        path: The file.
        what: What the file is, for the message (``"class-name file"``, ...).

    Raises:
        DataFileError: The bytes are not UTF-8; the message gives the line and byte.
        FileNotFoundError, IsADirectoryError: As ``open`` raises them.
    """
    data = Path(path).read_bytes()
    # The BOM is dropped before decoding, not by "utf-8-sig", whose error offsets would skip it.
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        bad = data[error.start:error.start + 4]
        raise DataFileError(
            f"{path}: line {line}, byte {column}: not UTF-8 (bytes {bad!r}); a {what} must be UTF-8 text "
            "(re-encode it, e.g. `iconv -f latin1 -t utf-8`)"
        ) from None


def numbered_lines(path: PathLike, what: str = "file") -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of the lines that are neither blank nor ``#`` comments."""
    lines = read_text(path, what).splitlines()
    return [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip() and not line.strip().startswith("#")]


__all__ = ["DataFileError", "numbered_lines", "read_text"]
