"""Datasets and loaders of a run, built from its :class:`DataConfig` and :class:`EvalSetConfig`.

The videos, samplers, transforms and the skip-and-count contract are :mod:`froster.data`'s; this
module only wires them to the configs: paths relative to the data root, synthetic videos for
smoke runs, few-shot subsets, and a training sampler that can start in the middle of an epoch so
that a resumed run sees exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path
from typing import Any, Iterator, Optional, Union, overload

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from froster.data import EvalDistributedSampler, VideoDataConfig, VideoDataset, collate_skip_none
from froster.data.classes import read_class_names, read_class_prompts
from froster.text import ClassText
from froster.training.configs import ConfigError, DataConfig, EvalSetConfig


@overload
def resolve(root: Optional[str], path: str) -> Path: ...
@overload
def resolve(root: Optional[str], path: None) -> None: ...
@overload
def resolve(root: Optional[str], path: Optional[str]) -> Optional[Path]: ...


def resolve(root: Optional[str], path: Optional[str]) -> Optional[Path]:
    """``path`` under ``root`` unless absolute (or ``root`` is None)."""
    if path is None:
        return None
    expanded = Path(os.path.expanduser(path))
    return expanded if expanded.is_absolute() or root is None else Path(os.path.expanduser(root)) / expanded


def _existing(root: Optional[str], path: Optional[str], what: str) -> Path:
    resolved = resolve(root, path)
    if resolved is None or not resolved.is_file():
        hint = "set data.root=<directory of the datasets>" if root is None else f"relative paths are read under {root}"
        raise FileNotFoundError(f"{what} {path!r} not found at {resolved} ({hint})")
    return resolved


def prepare_synthetic(config: DataConfig) -> None:
    """Write the synthetic videos under ``config.root`` unless they are there already.

    Writes ``train.txt``, ``test.txt`` and ``classes.txt`` (call on one rank, then synchronise).
    """
    from froster.data.synthetic import write_synthetic_dataset

    spec, root = config.synthetic, Path(config.root or "synthetic_videos")
    if spec is None or ((root / "train.txt").is_file() and (root / "test.txt").is_file()):
        return
    common = dict(num_classes=spec.num_classes, frames=spec.frames, size=spec.size)
    write_synthetic_dataset(root, videos_per_class=spec.train_videos_per_class, seed=spec.seed, split="train", **common)
    write_synthetic_dataset(root, videos_per_class=spec.test_videos_per_class, seed=spec.seed + 1, split="test", **common)


def with_synthetic_defaults(config: DataConfig) -> DataConfig:
    """Fill in the synthetic dataset's file names where the config leaves them open."""
    if config.synthetic is None:
        return config
    return dataclasses.replace(
        config,
        root=config.root or "synthetic_videos",
        train_split=config.train_split or "train.txt",
        class_names=config.class_names or "classes.txt",
    )


def video_data_config(config: DataConfig) -> VideoDataConfig:
    return VideoDataConfig(
        stride=config.stride,
        num_test_clips=config.num_test_clips,
        crop_size=config.image_size,
        train_short_side=(config.short_side[0], config.short_side[1]),
        test_short_side=config.image_size,
        backend=config.backend,
    )


def class_prompts(root: Optional[str], class_names: Optional[str], descriptions: Optional[str] = None) -> list[ClassText]:
    """What stands for each class in prompts: its name, and its description when a file gives them."""
    names = read_class_names(_existing(root, class_names, "class-name file"))
    return read_class_prompts(names, None if descriptions is None else _existing(root, descriptions, "descriptions file"))


def few_shot_indices(labels: list[int], shots: int, seed: int) -> list[int]:
    """``shots`` indices of each label (all of a rarer label), drawn with ``seed``, in dataset order."""
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    rng = random.Random(seed)
    chosen = [i for label in sorted(by_label) for i in rng.sample(by_label[label], min(shots, len(by_label[label])))]
    return sorted(chosen)


def train_dataset(config: DataConfig, seed: int) -> Union[VideoDataset, Subset[Any]]:
    """The training :class:`VideoDataset` (a few-shot subset when ``shots_per_class`` is set)."""
    if config.train_split is None or config.class_names is None:
        raise ConfigError("data.train_split and data.class_names must be set (e.g. data.train_split=k400/train.txt)")
    dataset = VideoDataset(
        _existing(config.root, config.train_split, "data.train_split"),
        root=config.root,
        class_names=_existing(config.root, config.class_names, "data.class_names"),
        num_frames=config.num_frames,
        sampling=config.sampling,
        train=True,
        config=video_data_config(config),
    )
    if config.shots_per_class is not None:
        return Subset(dataset, few_shot_indices(dataset.labels, config.shots_per_class, seed))
    return dataset


def eval_dataset(data: DataConfig, eval_set: EvalSetConfig, student: Optional[torch.nn.Module] = None) -> VideoDataset:
    """The test-time :class:`VideoDataset` of one evaluation set (``num_test_clips`` views each).

    Frames are normalised with ``student``'s pixel statistics when it has them (a released
    ViFi-CLIP or X-CLIP model expects ImageNet's), else CLIP's.
    """
    root = eval_set.root if eval_set.root is not None else data.root
    config = video_data_config(data)
    mean, std = getattr(student, "pixel_mean", None), getattr(student, "pixel_std", None)
    if mean is not None and std is not None:
        config = dataclasses.replace(config, mean=tuple(mean), std=tuple(std))
    return VideoDataset(
        _existing(root, eval_set.split, "eval set split"),
        root=root,
        class_names=_existing(root, eval_set.class_names, "eval set class_names"),
        num_frames=data.num_frames,
        sampling=data.sampling,
        train=False,
        config=config,
    )


class ResumableSampler(DistributedSampler):
    """torch's ``DistributedSampler`` (same permutation for a seed and epoch) that can skip ahead.

    ``start_at(n)`` makes the next iteration begin at this rank's ``n``-th index of the epoch, so a
    run resumed after ``k`` batches continues with batch ``k + 1`` of the same permutation. The
    skip applies to one iteration only.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._start = 0

    def start_at(self, index: int) -> None:
        self._start = index

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())[self._start:]
        self._start = 0
        return iter(indices)


def train_loader(dataset: Dataset, config: DataConfig, rank: int, world_size: int, seed: int) -> tuple[DataLoader, ResumableSampler]:
    """The training loader: shuffled per epoch by the sampler, incomplete last batch dropped."""
    sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate_skip_none,
        drop_last=True,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
        # Its own generator: creating an iterator then draws no number from the global RNG,
        # which a resumed run (restored RNG state) must not see either.
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler


def eval_loader(dataset: VideoDataset, batch_size: int, num_workers: int, rank: int, world_size: int) -> DataLoader:
    """Every video exactly once across ranks, in order, no padding duplicates."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EvalDistributedSampler(dataset, num_replicas=world_size, rank=rank),
        num_workers=num_workers,
        collate_fn=collate_skip_none,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(0),
    )


__all__ = [
    "ResumableSampler",
    "class_prompts",
    "eval_dataset",
    "eval_loader",
    "few_shot_indices",
    "prepare_synthetic",
    "resolve",
    "train_dataset",
    "train_loader",
    "with_synthetic_defaults",
]
