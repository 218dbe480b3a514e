"""One run per output directory: an advisory lock on ``<output_dir>/.lock``.

Two ``froster train`` processes writing one run directory would resume from each other's
checkpoints and overwrite each other's weights. The first run takes an exclusive ``flock`` on the
lock file and writes its pid, host and start time into it; a second run finds the lock taken and
stops at once with a message naming the holder. The kernel drops the lock when the holding process
ends, however it ends (``kill -9`` included), so a crashed run never blocks the next one. Under
``torchrun`` only rank 0 takes the lock, and every rank learns whether it got it.

``flock`` locks are per host on most network file systems' clients; two hosts writing one run
directory on a shared file system are only kept apart where the file system forwards the lock
(NFSv4 and Lustre do).
"""
from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from pathlib import Path
from typing import Optional, Union

from froster import distributed as D

PathLike = Union[str, os.PathLike]
LOCK_NAME = ".lock"


class RunDirectoryInUse(RuntimeError):
    """Another process holds the run directory's lock."""


class RunLock:
    """The held lock of one run directory; :meth:`release` (or the end of the process) frees it."""

    def __init__(self, directory: Path, handle) -> None:
        self.directory = directory
        self._handle = handle
        self._owner = os.getpid()

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        """Free the lock (the file stays: removing it would race with a run taking it)."""
        if self._handle is None:
            return
        if os.getpid() == self._owner:
            import fcntl

            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        # A forked child (a DataLoader worker) shares the lock with its parent: unlocking there
        # would free the parent's lock, closing its copy of the descriptor does not.
        self._handle.close()
        self._handle = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # an unreleased lock goes with its object, as with its process
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def acquire(directory: PathLike) -> RunLock:
    """Take the lock of ``directory`` (created if needed) or raise :class:`RunDirectoryInUse`."""
    import fcntl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    # Not truncated on open: a refused run must still read the holder's details.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(handle.read())
        handle.close()
        raise RunDirectoryInUse(
            f"train.output_dir {directory} is in use by another run ({holder}); wait for it to end, "
            "or give this run another train.output_dir"
        ) from None
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": _command_line(),
    }))
    handle.flush()
    return RunLock(directory, handle)


def _command_line() -> str:
    # `python -m froster` and torchrun put the path of froster/__main__.py in argv[0].
    program = "froster" if sys.argv[0].endswith(("__main__.py", "froster")) else sys.argv[0]
    return " ".join([program, *sys.argv[1:]])


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on host {holder['host']}, since {holder['started']}: {holder['command']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not written its details yet"


def lock_run_directory(directory: PathLike, info: Optional[D.DistInfo] = None, sweep: bool = False) -> Optional[RunLock]:
    """Lock a run directory for this job: rank 0 takes the lock, every rank learns the outcome.

    Args:
        directory: The run's output dir.
        info: This process's place in the job; a single process when None.
        sweep: Once the lock is held, remove what killed saves left behind
            (:func:`froster.training.checkpoint.sweep_leftovers`) and say so.

    Returns:
        The held lock on rank 0; None on the other ranks.

    Raises:
        RunDirectoryInUse: On every rank, when another run holds the directory.
    """
    info = info or D.DistInfo()
    lock, refusal = None, None
    if info.is_main:
        try:
            lock = acquire(directory)
        except RunDirectoryInUse as error:
            refusal = str(error)
    refusal = D.broadcast_object(refusal) if info.distributed else refusal
    if refusal is not None:
        raise RunDirectoryInUse(refusal)
    if sweep and lock is not None:
        from froster.training.checkpoint import sweep_leftovers

        removed = sweep_leftovers(directory)
        if removed:
            names = ", ".join(p.name for p in removed[:5])
            print(f"removed {len(removed)} leftover(s) of interrupted saves in {directory}: {names}", flush=True)
    return lock


__all__ = ["LOCK_NAME", "RunDirectoryInUse", "RunLock", "acquire", "lock_run_directory"]
