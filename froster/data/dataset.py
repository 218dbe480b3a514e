"""The video dataset, and the skip-and-count contract for unreadable videos.

Items
    ``VideoDataset[i]`` is a dict::

        {"video": (C, T, H, W) float32 in training, (V, C, T, H, W) at test time (V temporal views,
                  even when V = 1), CLIP-normalised,
         "label": int, "index": i, "path": str}

    or ``None`` when the video cannot be read (missing, truncated, garbage): a
    :class:`CorruptVideoWarning` naming the file and its split line is issued, and the run goes on.

Batches
    Use :func:`collate_skip_none` as the DataLoader's ``collate_fn``. It drops the ``None`` items
    and collates the rest with torch's default collate, so a batch is::

        {"video": (B, C, T, H, W) or (B, V, C, T, H, W), "label": (B,) int64, "index": (B,) int64,
         "path": list of B str, "skipped": int}

    ``batch["skipped"]`` is the number of videos of this batch that were dropped; B is the batch
    size minus that number. When every video of a batch is unreadable the batch is
    ``{"skipped": n}`` alone: check ``"video" in batch`` before using it.

The skipped-count contract (for training and evaluation loops)
    Sum ``batch["skipped"]`` over an epoch (and, with several processes, all-reduce the sum) and
    report it in the epoch summary; evaluation should report it beside the accuracy, since skipped
    videos are missing from the denominator. The count lives in the batches, not in the dataset,
    because each DataLoader worker holds its own copy of the dataset.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch.utils.data import Dataset

from froster.data.annotations import VideoRecord, read_split
from froster.data.classes import read_class_names
from froster.data.decoding import DEFAULT_BACKEND, CorruptVideoError, backend_for_workers, read_frames
from froster.data.sampling import FrameSampler
from froster.data.transforms import CLIP_MEAN, CLIP_STD, TestTransform, TrainTransform

PathLike = Union[str, os.PathLike]


class CorruptVideoWarning(UserWarning):
    """A video was skipped because it could not be read."""


@dataclass
class VideoDataConfig:
    """How clips are sampled and transformed; saved with checkpoints as JSON via :meth:`to_dict`.

    Attributes:
        stride: Frames between samples in dense mode (the paper: 16).
        target_fps: Rate ``stride`` is counted at (PySlowFast: 30); None: the video's own rate.
        num_test_clips: Temporal views at test time (the paper: 3).
        crop_size: Side of the square clip (the paper: 224).
        train_short_side: Inclusive range of the random short side in training.
        test_short_side: Short side before the centre crop at test time.
        hflip: Random horizontal flips in training.
        backend: Decoder: ``"auto"`` (torchcodec where it works, else PyAV), ``"torchcodec"``,
            ``"pyav"`` or ``"pytorchvideo"`` (see :mod:`froster.data.decoding`).
        on_missing: ``"error"``, ``"skip"`` or ``"ignore"`` for videos listed but absent (see
            :func:`froster.data.annotations.read_split`).
        mean: Per-channel mean of the normalisation, for values in [0, 1] (CLIP's; ViFi-CLIP and
            X-CLIP models were trained with ImageNet's, see ``student.pixel_mean``).
        std: Per-channel standard deviation of the normalisation.
    """

    stride: int = 16
    target_fps: Optional[float] = None
    num_test_clips: int = 3
    crop_size: int = 224
    train_short_side: tuple[int, int] = (224, 256)
    test_short_side: int = 224
    hflip: bool = True
    backend: str = DEFAULT_BACKEND
    on_missing: str = "error"
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VideoDataConfig":
        data = dict(data)
        for key in ("train_short_side", "mean", "std"):  # JSON turns tuples into lists
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


class VideoDataset(Dataset):
    """Videos listed in a split file, as sampled, augmented, CLIP-normalised clips.

    Args:
        split_file: ``path label`` lines (see :mod:`froster.data.annotations`).
        root: Directory the split's paths are relative to; the split file's directory when None.
        class_names: A class-name file, a sequence of names, or None. When given, labels are
            checked against it and it is kept as ``self.class_names``.
        num_frames: T, frames per clip (the paper: 8).
        sampling: ``"dense"`` (T frames ``stride`` apart) or ``"uniform"`` (one per segment).
        train: Random clip, scale jitter, crop and flip when True; ``num_test_clips`` evenly
            spaced clips with a centre crop when False.
        config: Sampling, transform and decoding details; defaults to the paper's.
        transform: Replaces the default transform: uint8 ``(*, T, 3, H, W)`` ->
            ``(*, C, T, H, W)``, called on ``(T, 3, H, W)`` in training, ``(V, T, 3, H, W)`` at test.
    """

    def __init__(
        self,
        split_file: PathLike,
        root: Optional[PathLike] = None,
        class_names: Union[PathLike, Sequence[str], None] = None,
        num_frames: int = 8,
        sampling: str = "dense",
        train: bool = True,
        *,
        config: Optional[VideoDataConfig] = None,
        transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ):
        self.config = config if config is not None else VideoDataConfig()
        if isinstance(class_names, (str, os.PathLike)):
            class_names = read_class_names(class_names)
        self.class_names = list(class_names) if class_names is not None else None
        self.split_file = Path(split_file)
        self.train = train
        # Resolved here, so that a fallback from "auto" warns once, not once per worker.
        self.backend = backend_for_workers(self.config.backend)
        self.records: list[VideoRecord] = read_split(
            split_file, root,
            num_classes=len(self.class_names) if self.class_names is not None else None,
            on_missing=self.config.on_missing,
        )
        self.sampler = FrameSampler(
            mode=sampling, num_frames=num_frames, stride=self.config.stride,
            num_test_clips=self.config.num_test_clips, target_fps=self.config.target_fps,
        )
        if transform is None:
            c = self.config
            transform = (
                TrainTransform(c.crop_size, c.train_short_side, c.hflip, mean=c.mean, std=c.std)
                if train else TestTransform(c.test_short_side, c.crop_size, mean=c.mean, std=c.std)
            )
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        """The label of every video, in dataset order."""
        return [record.label for record in self.records]

    def _indices(self, num_video_frames: int, fps: Optional[float]) -> torch.Tensor:
        return self.sampler(num_video_frames, train=self.train, fps=fps)  # (V, T)

    def __getitem__(self, index: int) -> Optional[dict[str, Any]]:
        record = self.records[index]
        try:
            frames = read_frames(record.path, self._indices, backend=self.backend)  # (V, T, 3, H, W)
        except CorruptVideoError as error:
            warnings.warn(
                f"skipping unreadable video (line {record.line} of {self.split_file.name}): {error}",
                CorruptVideoWarning,
                stacklevel=2,
            )
            return None
        video = self.transform(frames[0] if self.train else frames)  # (C, T, H, W) | (V, C, T, H, W)
        return {"video": video, "label": record.label, "index": index, "path": record.path}


def collate_skip_none(batch: Sequence[Optional[dict[str, Any]]]) -> dict[str, Any]:
    """Collate dataset items, dropping the ``None`` of unreadable videos and counting them.

    Args:
        batch: Items from :class:`VideoDataset` (or any dataset returning dicts or None).

    Returns:
        The default-collated batch plus ``"skipped"``, the number of dropped items; only
        ``{"skipped": n}`` when all were dropped.
    """
    from torch.utils.data import default_collate

    kept = [item for item in batch if item is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return {"skipped": skipped}
    collated = default_collate(kept)
    collated["skipped"] = skipped
    return collated
