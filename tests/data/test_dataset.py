"""VideoDataset items, and unreadable videos skipped and counted through a real DataLoader."""
from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip("av")
pytest.importorskip("torchvision")

from froster.data import (  # noqa: E402
    CorruptVideoWarning,
    EvalDistributedSampler,
    SplitFileError,
    VideoDataConfig,
    VideoDataset,
    collate_skip_none,
    read_class_names,
    write_corrupt_video,
)
from froster.data.decoding import torchcodec_problem  # noqa: E402

from .conftest import NUM_CLASSES, SIZE, VIDEOS_PER_CLASS  # noqa: E402

NUM_VIDEOS = NUM_CLASSES * VIDEOS_PER_CLASS
CONFIG = VideoDataConfig(stride=2, num_test_clips=3, crop_size=SIZE, train_short_side=(SIZE, SIZE + 8), test_short_side=SIZE)


def _dataset(synthetic, train, **kwargs):
    root, split_file, class_names_file = synthetic
    kwargs.setdefault("config", CONFIG)
    return VideoDataset(split_file, root, class_names_file, num_frames=4, train=train, **kwargs)


def test_train_item_contract(synthetic):
    dataset = _dataset(synthetic, train=True)
    assert len(dataset) == NUM_VIDEOS and dataset.class_names == read_class_names(synthetic[2])
    item = dataset[3]
    assert set(item) == {"video", "label", "index", "path"}
    assert item["video"].shape == (3, 4, SIZE, SIZE) and item["video"].dtype == torch.float32
    assert item["label"] == dataset.labels[3] == 1 and item["index"] == 3
    assert item["path"].endswith("class_01/video_001.mp4")


@pytest.mark.parametrize("sampling", ["dense", "uniform"])
def test_test_item_has_view_axis_and_is_deterministic(synthetic, sampling):
    dataset = _dataset(synthetic, train=False, sampling=sampling)
    first, second = dataset[0]["video"], dataset[0]["video"]
    assert first.shape == (3, 3, 4, SIZE, SIZE)  # (V, C, T, H, W)
    assert torch.equal(first, second)
    assert not torch.equal(first[0], first[2])  # different temporal clips


def test_backends_give_the_same_items(synthetic):
    backends = ["pytorchvideo", "pyav"] + (["torchcodec"] if torchcodec_problem() is None else [])
    items = [
        _dataset(synthetic, train=False, config=VideoDataConfig(**{**CONFIG.to_dict(), "backend": b}))[2]["video"]
        for b in backends
    ]
    for backend, item in zip(backends[1:], items[1:]):
        assert torch.equal(item, items[0]), backend


def test_the_default_backend_is_auto_everywhere(synthetic):
    """VideoDataset, the run config and every shipped recipe decode with "auto" unless told."""
    from froster.recipes import list_recipes, recipe_dict
    from froster.training.configs import DataConfig

    assert VideoDataConfig().backend == DataConfig().backend == "auto"
    for name in list_recipes():
        assert recipe_dict(name)["data"].get("backend", "auto") == "auto", name
    dataset = _dataset(synthetic, train=False, config=VideoDataConfig(**{**CONFIG.to_dict(), "backend": "auto"}))
    # Where torchcodec works, "auto" reaches the workers and each file's container decides.
    assert dataset.backend == ("auto" if torchcodec_problem() is None else "pyav")


def _split_with_corrupt_videos(synthetic, tmp_path):
    root, split_file, _ = synthetic
    write_corrupt_video(root / "bad" / "truncated.mp4", "truncated")
    write_corrupt_video(root / "bad" / "garbage.mp4", "garbage")
    lines = split_file.read_text().splitlines()
    lines[1:1] = ["bad/truncated.mp4 0"]
    lines.append("bad/garbage.mp4 2")
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("\n".join(lines) + "\n")
    return mixed


@pytest.mark.parametrize("num_workers", [0, 2])
def test_corrupt_videos_are_skipped_and_counted_through_a_dataloader(synthetic, tmp_path, num_workers):
    mixed = _split_with_corrupt_videos(synthetic, tmp_path)
    dataset = VideoDataset(mixed, synthetic[0], synthetic[2], num_frames=4, train=True, config=CONFIG)
    loader = DataLoader(dataset, batch_size=3, num_workers=num_workers, collate_fn=collate_skip_none)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader)
    skipped = sum(batch["skipped"] for batch in batches)
    seen = [i for batch in batches if "video" in batch for i in batch["index"].tolist()]
    assert skipped == 2 and len(seen) == NUM_VIDEOS and sorted(seen + [1, NUM_VIDEOS + 1]) == list(range(NUM_VIDEOS + 2))
    for batch in batches:
        assert batch["video"].shape[1:] == (3, 4, SIZE, SIZE) and len(batch["path"]) == len(batch["label"])
    if num_workers == 0:  # worker processes print their warnings instead of handing them back
        messages = [str(w.message) for w in caught if issubclass(w.category, CorruptVideoWarning)]
        assert len(messages) == 2
        assert "line 2 of mixed.txt" in messages[0] and "truncated.mp4" in messages[0]
        assert "line 8 of mixed.txt" in messages[1] and "garbage.mp4" in messages[1]


def test_a_batch_of_only_unreadable_videos_and_eval_sampler(synthetic, tmp_path):
    mixed = _split_with_corrupt_videos(synthetic, tmp_path)
    dataset = VideoDataset(mixed, synthetic[0], num_frames=4, train=False, config=CONFIG)
    with pytest.warns(CorruptVideoWarning):
        assert collate_skip_none([dataset[1], None]) == {"skipped": 2}
    sampler = EvalDistributedSampler(dataset, num_replicas=2, rank=1)
    loader = DataLoader(dataset, batch_size=4, sampler=sampler, collate_fn=collate_skip_none)
    with pytest.warns(CorruptVideoWarning):
        batches = list(loader)
    # Rank 1 of 2 gets indices 1, 3, 5, 7, of which 1 and 7 are the unreadable ones.
    assert [b["index"].tolist() for b in batches] == [[3, 5]]
    assert batches[0]["skipped"] == 2 and batches[0]["video"].shape == (2, 3, 3, 4, SIZE, SIZE)


def test_labels_are_checked_against_the_class_names(synthetic, tmp_path):
    root, split_file, _ = synthetic
    with pytest.raises(SplitFileError, match="label 2 is not"):
        VideoDataset(split_file, root, ["a", "b"], num_frames=4, config=CONFIG)


def test_config_round_trips_through_json_and_missing_files_follow_it(synthetic, tmp_path):
    config = VideoDataConfig(train_short_side=(40, 48), on_missing="skip")
    assert VideoDataConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    root, split_file, _ = synthetic
    split = tmp_path / "split.txt"
    shutil.copy(split_file, split)
    with open(split, "a") as handle:
        handle.write("videos/nowhere.mp4 0\n")
    with pytest.warns(UserWarning, match="nowhere.mp4"):
        dataset = VideoDataset(split, root, num_frames=4, config=VideoDataConfig(**{**CONFIG.to_dict(), "on_missing": "skip"}))
    assert len(dataset) == NUM_VIDEOS
