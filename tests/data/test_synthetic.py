"""The synthetic dataset: layout, reproducibility, and classes a simple model can tell apart."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from froster.data import VideoDataConfig, VideoDataset, read_class_names, read_split  # noqa: E402
from froster.data.decoding import read_frames  # noqa: E402
from froster.data.synthetic import class_name, make_clip, write_synthetic_dataset, write_video  # noqa: E402

from .conftest import FRAMES, NUM_CLASSES, SIZE, VIDEOS_PER_CLASS  # noqa: E402


def test_layout_and_round_trip(synthetic):
    root, split_file, class_names_file = synthetic
    assert split_file == root / "train.txt" and class_names_file == root / "classes.txt"
    names = read_class_names(class_names_file)
    assert names == [class_name(k, NUM_CLASSES) for k in range(NUM_CLASSES)] and len(set(names)) == NUM_CLASSES
    records = read_split(split_file, num_classes=NUM_CLASSES)
    assert [r.label for r in records] == [k for k in range(NUM_CLASSES) for _ in range(VIDEOS_PER_CLASS)]
    frames = read_frames(records[0].path, lambda n, fps: torch.arange(n))
    assert frames.shape == (FRAMES, 3, SIZE, SIZE)


def test_same_seed_same_pixels_other_seed_other_pixels():
    rng = lambda seed: np.random.default_rng(seed)  # noqa: E731
    assert np.array_equal(make_clip(1, 4, 8, 16, rng(3)), make_clip(1, 4, 8, 16, rng(3)))
    assert not np.array_equal(make_clip(1, 4, 8, 16, rng(3)), make_clip(1, 4, 8, 16, rng(4)))
    assert class_name(0, 4) == "red bar moving right" and class_name(3, 4) == "violet bar moving up"
    assert class_name(13, 20).endswith(" 13")  # more classes than colour names stay unique


def test_odd_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((4, 15, 16, 3), np.uint8))


def test_classes_are_separable_on_held_out_videos(synthetic, tmp_path):
    """A nearest-class-mean classifier on clip colour statistics beats chance by far."""
    root = synthetic[0]
    test_split, _ = write_synthetic_dataset(
        root, num_classes=NUM_CLASSES, videos_per_class=VIDEOS_PER_CLASS, frames=FRAMES, size=SIZE, seed=1, split="test"
    )
    config = VideoDataConfig(stride=2, num_test_clips=1, crop_size=SIZE, test_short_side=SIZE)

    def features(split):
        dataset = VideoDataset(split, root, num_frames=8, train=False, config=config)
        items = [dataset[i] for i in range(len(dataset))]
        # Per-channel mean and 95th percentile: background colour and bar colour.
        x = torch.stack([item["video"].flatten(2) for item in items])  # (N, 1, C, T*H*W)
        stats = torch.cat([x.mean(-1), x.quantile(0.95, dim=-1)], dim=-1).flatten(1)  # (N, 2C)
        return stats, torch.tensor([item["label"] for item in items])

    train_x, train_y = features(synthetic[1])
    test_x, test_y = features(test_split)
    centroids = torch.stack([train_x[train_y == k].mean(0) for k in range(NUM_CLASSES)])
    predictions = torch.cdist(test_x, centroids).argmin(dim=1)
    assert (predictions == test_y).float().mean() == 1.0
