"""A tiny synthetic video dataset and tiny run overrides for the security tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def security_videos(tmp_path_factory) -> Path:
    """4 classes x 2 training videos and 4 x 1 test videos, 8 frames of 32 px."""
    from froster.data.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("security_videos")
    write_synthetic_dataset(root, num_classes=4, videos_per_class=2, frames=8, size=32, seed=0, split="train")
    write_synthetic_dataset(root, num_classes=4, videos_per_class=1, frames=8, size=32, seed=1, split="test")
    return root


def tiny_run_overrides(video_root: Path, output_dir: Path, *extra: str) -> list[str]:
    """``froster train --config tiny_synthetic`` overrides for a run of a few CPU seconds."""
    return [
        f"data.root={video_root}",
        "data.synthetic=null",
        "data.train_split=train.txt",
        "data.class_names=classes.txt",
        f"train.output_dir={output_dir}",
        "train.progress=false",
        "train.eval_at_end=false",
        "averaging.enabled=false",
        *extra,
    ]
