"""Shared fixtures: one tiny synthetic video dataset per session and tiny run configs around it."""
from __future__ import annotations

from pathlib import Path

import pytest

from froster.recipes import load_recipe
from froster.training.configs import RunConfig

# 4 classes x 2 training videos (2 steps of 4 per epoch), 4 x 1 test videos, 8 frames of 32 px.
NUM_CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2, 1


@pytest.fixture(scope="session")
def video_root(tmp_path_factory) -> Path:
    from froster.data.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic_videos")
    common = dict(num_classes=NUM_CLASSES, frames=8, size=32)
    write_synthetic_dataset(root, videos_per_class=TRAIN_PER_CLASS, seed=0, split="train", **common)
    write_synthetic_dataset(root, videos_per_class=TEST_PER_CLASS, seed=1, split="test", **common)
    return root


def tiny_overrides(video_root: Path, output_dir: Path, *extra: str) -> list[str]:
    """Overrides that turn the ``tiny_synthetic`` recipe into a seconds-long CPU run."""
    return [
        f"data.root={video_root}",
        "data.synthetic=null",
        "data.train_split=train.txt",
        "data.class_names=classes.txt",
        "data.batch_size=4",
        "data.num_test_clips=2",
        f"train.output_dir={output_dir}",
        "train.progress=false",
        "schedule.epochs=2",
        "eval.batch_size=4",
        *extra,
    ]


@pytest.fixture
def tiny_config(video_root, tmp_path):
    """``tiny_config(*overrides)`` -> a RunConfig writing under this test's tmp_path."""

    def make(*extra: str, output_dir: Path | None = None) -> RunConfig:
        return load_recipe("tiny_synthetic", tiny_overrides(video_root, output_dir or tmp_path / "run", *extra))

    return make
