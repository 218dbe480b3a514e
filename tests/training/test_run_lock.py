"""One run per output directory: a second ``froster train`` into it is refused at once.

The lock is an advisory ``flock`` on a file in the run directory, so it is tested with real
processes: a training run that holds the directory, and a second one that must stop before it
builds anything, naming the holder.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from froster.distributed import DistInfo
from froster.training.run_lock import LOCK_NAME, RunDirectoryInUse, lock_run_directory

from .conftest import tiny_overrides


def _train_command(video_root, out, *extra: str) -> list[str]:
    return [sys.executable, "-m", "froster", "train", "--config", "tiny_synthetic", *tiny_overrides(video_root, out, *extra)]


@pytest.mark.slow
def test_second_run_into_a_held_directory_is_refused_naming_the_holder(video_root, tmp_path):
    out = tmp_path / "shared_run"
    # The first run's epoch is long (the same 8 videos listed 250 times, no checkpoint inside it),
    # so it holds the directory while the second one starts, and writes nothing meanwhile.
    long_split = tmp_path / "long.txt"
    long_split.write_text((video_root / "train.txt").read_text() * 250)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen(
        _train_command(video_root, out, f"data.train_split={long_split}", "train.eval_at_end=false"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        lock_file = out / LOCK_NAME
        while not (lock_file.is_file() and f'"pid": {first.pid}' in lock_file.read_text()):
            assert first.poll() is None, "the first run ended before it took the lock"
            time.sleep(0.2)

        second = subprocess.run(_train_command(video_root, out, "schedule.epochs=1"), capture_output=True, text=True, env=env, timeout=600)
        assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
        assert f"pid {first.pid} on host {socket.gethostname()}" in second.stderr, second.stderr
        assert "train.output_dir" in second.stderr and "Traceback" not in second.stderr
        assert not any(line.startswith("epoch ") for line in second.stdout.splitlines()), "the second run trained"
        assert first.poll() is None, "the first run must go on untouched"
    finally:
        first.send_signal(signal.SIGKILL)  # as a crash would end it
        first.wait()
    # The kernel released the dead run's lock: nothing stale blocks the next run.
    lock_run_directory(out).release()


def test_lock_is_refused_within_one_process_and_released_on_close(tmp_path):
    held = lock_run_directory(tmp_path)
    with pytest.raises(RunDirectoryInUse, match=rf"pid {os.getpid()} on host {socket.gethostname()}"):
        lock_run_directory(tmp_path)
    held.release()
    lock_run_directory(tmp_path).release()


def test_a_forked_child_does_not_free_the_parents_lock(tmp_path):
    # DataLoader workers are forked with the lock's descriptor; their copy must not unlock it.
    import multiprocessing

    held = lock_run_directory(tmp_path)
    child = multiprocessing.get_context("fork").Process(target=held.release)
    child.start()
    child.join()
    assert child.exitcode == 0
    with pytest.raises(RunDirectoryInUse):
        lock_run_directory(tmp_path)
    held.release()


def test_under_torchrun_only_rank_zero_takes_the_lock(tmp_path):
    other_rank = lock_run_directory(tmp_path, DistInfo(rank=1, world_size=2))
    assert other_rank is None
    lock_run_directory(tmp_path, DistInfo(rank=0, world_size=1)).release()
