"""Fixtures for the data tests: a small synthetic dataset, and every official layout prepared, once per session."""
from __future__ import annotations

import contextlib
import io

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


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """Every dataset written in its official layout (tests/data/layouts.py), then prepared into one
    ``out`` with the CLI: ``(raw, out, truth per dataset, printed summary per dataset)``."""
    pytest.importorskip("av")
    from froster.cli import main
    from froster.data.prepare import DATASETS

    from . import layouts

    raw, out = tmp_path_factory.mktemp("raw"), tmp_path_factory.mktemp("prepared")
    community = raw / "ViFi-CLIP"
    truth, printed = {}, {}
    for name in DATASETS:
        truth[name] = layouts.WRITERS[name](raw / name, community)
    for name in DATASETS:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = main(["data", "prepare", name, "--root", str(raw / name), "--out", str(out), "--splits", str(community)])
        assert code == 0, buffer.getvalue()
        printed[name] = buffer.getvalue()
    return raw, out, truth, printed
