"""``froster data check``: every video decoded in worker processes, unreadable ones listed, a clean split."""
from __future__ import annotations

import contextlib
import csv
import io
import shutil

import pytest

pytest.importorskip("av")

from froster.cli import main  # noqa: E402
from froster.data.annotations import read_split  # noqa: E402
from froster.data.check import check_split  # noqa: E402
from froster.data.synthetic import write_corrupt_video  # noqa: E402

from .conftest import FRAMES, NUM_CLASSES, SIZE, VIDEOS_PER_CLASS  # noqa: E402


@pytest.fixture
def damaged_split(synthetic, tmp_path):
    """The synthetic split plus a truncated, a garbage and a vanished video, at known lines."""
    root, split_file, _ = synthetic
    videos = tmp_path / "videos"
    shutil.copytree(root / "videos", videos / "videos")
    write_corrupt_video(videos / "bad" / "truncated.mp4", "truncated")
    write_corrupt_video(videos / "bad" / "garbage.mp4", "garbage")
    lines = split_file.read_text().splitlines()
    lines[2:2] = ["bad/truncated.mp4 0", "bad/garbage.mp4 1", "bad/vanished.mp4 2"]
    split = videos / "train.txt"
    split.write_text("\n".join(lines) + "\n")
    return split, videos, {3: "truncated.mp4", 4: "garbage.mp4", 5: "vanished.mp4"}


def test_check_reports_every_video_and_writes_a_clean_split(damaged_split, tmp_path):
    split, videos, bad = damaged_split
    report, clean = tmp_path / "report.csv", tmp_path / "clean.txt"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["data", "check", str(split), "--root", str(videos), "--workers", "2",
                     "--report", str(report), "--clean", str(clean), "--no-progress"])
    assert code == 0  # unreadable videos are listed, not fatal
    good = NUM_CLASSES * VIDEOS_PER_CLASS
    printed = out.getvalue()
    assert f"{good + 3} videos: {good} decoded, 3 unreadable" in printed
    assert f"frames per video: min {FRAMES}, median {FRAMES}, max {FRAMES}; resolutions: {SIZE}x{SIZE}" in printed
    for line, name in bad.items():
        assert f"line {line}: " in printed and name in printed
    with open(report, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in rows] == list(range(1, good + 4))
    for row in rows:
        if int(row["line"]) in bad:
            assert row["ok"] == "False" and bad[int(row["line"])] in row["error"]
        else:
            assert row["ok"] == "True" and not row["error"]
            assert (int(row["frames"]), float(row["fps"]), float(row["duration_s"])) == (FRAMES, 8.0, FRAMES / 8)
            assert (int(row["width"]), int(row["height"])) == (SIZE, SIZE)
    cleaned = read_split(clean, root=videos)
    assert len(cleaned) == good and not any("bad/" in r.path for r in cleaned)
    assert [r.path for r in cleaned] == [r.path for r in read_split(split, root=videos, on_missing="ignore") if "bad/" not in r.path]


def test_workers_change_nothing_but_speed(damaged_split):
    split, videos, _ = damaged_split
    serial = check_split(split, videos, workers=0, backend="pyav", progress=False)
    parallel = check_split(split, videos, workers=2, backend="pyav", progress=False)
    assert serial == parallel
    full = check_split(split, videos, workers=0, backend="pyav", full=True, progress=False)
    assert [r.ok for r in full] == [r.ok for r in serial]


def test_labels_are_checked_against_a_class_file(damaged_split, tmp_path, capsys):
    split, videos, _ = damaged_split
    classes = tmp_path / "two.txt"
    classes.write_text("a\nb\n")  # label 2 is out of range
    code = main(["data", "check", str(split), "--root", str(videos), "--classes", str(classes), "--workers", "0", "--no-progress"])
    assert code == 1
    assert "train.txt: 3 bad line(s):\n  line 5: label 2 is not [0, 2)" in capsys.readouterr().err
