"""Files that appear whole or not at all, created with the user's umask, and their leftovers.

:func:`atomic_write_bytes` writes to a hidden temporary file in the target's directory
(``.<name>.<random>.tmp``, same file system), flushes and ``fsync``-s it, moves it into place with
``os.replace`` and ``fsync``-s the directory: a reader sees the old file or the whole new one.
:func:`create_temp_dir` gives a staging directory named the same way, to be renamed when complete.

Temporary files are created with ``os.open(..., 0o666)`` and directories with ``mkdir(0o777)``, so
the process's umask applies as for any file the user writes (``tempfile.mkstemp`` would force
0600). A process killed mid-write leaves its temporary names behind; :func:`sweep_leftovers`
removes them when the next run holds the directory.
"""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


def _temp_name(directory: Path, name: str) -> Path:
    # `.<name>.<random>.tmp`: hidden, recognisable by sweep_leftovers, unique without mkstemp
    # (whose 0600 mode would ignore the umask).
    return directory / f".{name}.{secrets.token_hex(4)}.tmp"


def _create_temp_file(directory: Path, name: str) -> tuple[int, Path]:
    for _ in range(100):
        path = _temp_name(directory, name)
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path  # umask applies
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name} in {directory}")


def create_temp_dir(directory: Path, name: str) -> Path:
    """A new, empty ``directory/.<name>.<random>.tmp/`` to assemble something that is renamed when whole."""
    for _ in range(100):
        path = _temp_name(directory, name)
        try:
            path.mkdir(mode=0o777)  # umask applies
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name} in {directory}")


def _fsync(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The bytes go to a temporary file in the same directory (same file system, so the final
    ``os.replace`` is atomic), which is fsync-ed before it replaces ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            _fsync(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on some platforms.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# What interrupted saves leave, by folder relative to a run's output dir: the temporary names of
# atomic_write_bytes and of froster.training.checkpoint's staging directories, and only those.
LEFTOVER_PATTERNS = {
    "checkpoints": (".step_*.tmp", ".latest.*.tmp"),
    ".": (".*.safetensors.*.tmp", ".metrics.json.*.tmp", ".metrics.md.*.tmp"),
}


def sweep_leftovers(output_dir: PathLike) -> list[Path]:
    """Remove what interrupted saves left in a run's output dir; returns what was removed.

    Call it only while holding the run directory's lock (:mod:`froster.training.run_lock`): a
    save in progress in another run looks exactly like a leftover.
    """
    removed = []
    for folder, patterns in LEFTOVER_PATTERNS.items():
        base = Path(output_dir) / folder
        for pattern in patterns:
            for path in base.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed


__all__ = ["LEFTOVER_PATTERNS", "atomic_write_bytes", "create_temp_dir", "fsync_dir", "sweep_leftovers"]
