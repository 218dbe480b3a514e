"""Training sets that give nothing to train on, refused with what is wrong and how to fix it.

Two cases stop a run instead of letting it write "trained" weights that never saw a video:

* fewer videos than one batch per process (the loader drops incomplete batches), and
* a whole epoch without a step: every batch lacked a readable video. Unreadable videos are
  otherwise skipped and counted (the skip-and-count contract of :mod:`froster.data`); when
  nothing is left, the error gives the count and the first decoding errors.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Protocol

ERRORS_SHOWN = 3  # decoding errors quoted
PROBED = 100  # videos read again, at most, to find them


class SizedDataset(Protocol):
    """A map-style dataset with a length: a :class:`froster.data.VideoDataset` or a ``Subset`` of one."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class TrainingDataError(RuntimeError):
    """The training set gives nothing to train on: too few videos for a batch, or none readable."""


def no_full_batch(videos: int, batch_size: int, world_size: int, split: Optional[str]) -> TrainingDataError:
    """The error of a training set smaller than one batch on every process."""
    if videos == 0:
        return TrainingDataError(f"data.train_split ({split}) gives no training videos")
    largest = videos // world_size
    fix = f"set data.batch_size={largest} or less" if largest >= 1 else f"use at most {videos} processes"
    return TrainingDataError(
        f"{videos} training videos give no full batch of {batch_size} per process on {world_size} "
        f"process(es): {fix}, or list more videos"
    )


def unreadable_epoch(dataset: SizedDataset, epoch: int, skipped: int, seen: int, split: Optional[str]) -> TrainingDataError:
    """The error of an epoch in which no batch had a readable video.

    Args:
        dataset: The training set; its first videos are read again to quote their errors.
        epoch: 0-based epoch.
        skipped: Videos skipped in the epoch, over all processes.
        seen: Videos the epoch's batches held, over all processes.
        split: The split file, for the message.
    """
    share = f"all {seen} videos" if skipped >= seen else f"{skipped} of the {seen} videos"
    return TrainingDataError(
        f"no training step in epoch {epoch + 1}: {share} of data.train_split ({split}) could not be read; "
        "the first errors:\n  " + "\n  ".join(first_read_errors(dataset))
    )


def first_read_errors(dataset: SizedDataset, count: int = ERRORS_SHOWN) -> list[str]:
    """The warnings of the first ``count`` videos of ``dataset`` that cannot be read.

    The loader's workers warned about each of them already, in their own processes; reading a few
    again here is what lets the main process quote them.
    """
    errors: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index in range(min(len(dataset), PROBED)):
            if dataset[index] is None:  # the skip-and-count contract: None, and a warning
                errors.extend(str(w.message) for w in caught)
            caught.clear()
            if len(errors) >= count:
                break
    return errors[:count]


__all__ = ["TrainingDataError", "first_read_errors", "no_full_batch", "unreadable_epoch"]
