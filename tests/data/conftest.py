"""Fixtures for the data tests: one small synthetic dataset written once per test session."""
from __future__ import annotations

import pytest

NUM_CLASSES = 3
VIDEOS_PER_CLASS = 2
FRAMES = 24
SIZE = 32


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """A 3-class dataset of 24-frame 32 px videos: ``(root, split_file, class_names_file)``."""
    pytest.importorskip("av")
    from froster.data.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    split_file, class_names_file = write_synthetic_dataset(
        root, num_classes=NUM_CLASSES, videos_per_class=VIDEOS_PER_CLASS, frames=FRAMES, size=SIZE, fps=8, seed=0
    )
    return root, split_file, class_names_file
