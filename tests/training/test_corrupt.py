"""A truncated video in a split is skipped and counted; training and evaluation go on."""
from __future__ import annotations

import json
import warnings

from froster.data import CorruptVideoWarning
from froster.data.synthetic import write_corrupt_video
from froster.training.trainer import train


def test_truncated_video_is_skipped_and_counted(video_root, tiny_config, tmp_path, capsys):
    broken = write_corrupt_video(tmp_path / "broken.mp4", mode="truncated")
    good = (video_root / "train.txt").read_text().splitlines()[:7]  # 7 good + 1 broken = 2 full batches
    split = tmp_path / "train_with_broken.txt"
    split.write_text("\n".join(good + [f"{broken} 0"]) + "\n")
    tests = (video_root / "test.txt").read_text().splitlines()
    test_split = tmp_path / "test_with_broken.txt"
    test_split.write_text("\n".join(tests + [f"{broken} 1"]) + "\n")

    config = tiny_config(f"data.train_split={split}", f"eval.sets.synthetic.split={test_split}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(config, resume=None)

    assert result["finished"] and result["step"] == 4, "every step ran, with 3 videos in the broken batch"
    assert any(issubclass(w.category, CorruptVideoWarning) and "broken.mp4" in str(w.message) for w in caught)
    summaries = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(summaries) == 2 and all(line.endswith("skipped videos 1") for line in summaries)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["sets"]["synthetic"]
    assert metrics["skipped"] == 1 and metrics["num_videos"] == len(tests)
