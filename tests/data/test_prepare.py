"""``froster data prepare`` on miniature copies of the official layouts: every video lands with its class.

The layouts (tests/data/layouts.py) are written in the publishers' formats around real tiny
videos; the check of each written line is independent of the code under test: the video's file
name leads to its true class, which must be the class its label names in the class file the
recipes pair with that split.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("av")

from froster.data.annotations import read_split  # noqa: E402
from froster.data.classes import read_class_names  # noqa: E402
from froster.data.prepare import DATASETS, prepare  # noqa: E402
from froster.data.prepare.layout import name_key, stem  # noqa: E402
from froster.data.textfiles import DataFileError  # noqa: E402

from . import layouts  # noqa: E402

EXPECTED_FILES = {
    "k400": ["classes.txt", "train.txt", "val.txt", "test.txt"],
    "k600": ["classes.txt", "train.txt", "val.txt"] + [f"subset{k}_{f}" for k in (1, 2, 3) for f in ("test.txt", "classes.txt")],
    "ucf101": ["classes.txt"] + [f"{kind}_split{k}.txt" for k in (1, 2, 3) for kind in ("train", "test")],
    "hmdb51": ["classes.txt"] + [f"{kind}_split{k}.txt" for k in (1, 2, 3) for kind in ("train", "test")],
    "ssv2": ["classes.txt", "train.txt", "val.txt"],
}
B2N_FILES = [
    f"b2n/{f}.txt"
    for f in ("train_s1", "train_s2", "train_s3", "base_val", "novel_val", "test", "base_classes", "novel_classes", "classes")
]


def class_file_of(split_file: str) -> str:
    """The class file the recipes pair with a prepared split (what its labels index)."""
    folder, name = split_file.rsplit("/", 1)
    if name.startswith("subset"):
        return f"{folder}/{name.split('_')[0]}_classes.txt"
    if folder.endswith("/b2n"):
        if name == "novel_val.txt":
            return f"{folder}/novel_classes.txt"
        return f"{folder}/classes.txt" if name == "test.txt" else f"{folder}/base_classes.txt"
    return f"{folder}/classes.txt"


@pytest.mark.parametrize("name", DATASETS)
def test_every_prepared_video_has_its_true_class(prepared, name):
    raw, out, truth, _ = prepared
    files = EXPECTED_FILES[name] + (B2N_FILES if name != "k600" else [])
    for file in files:
        assert (out / name / file).is_file(), f"{name}/{file} not written"
    checked = 0
    for file in files:
        if "classes" in file:
            continue
        split = f"{name}/{file}"
        classes = read_class_names(out / class_file_of(split))
        records = read_split(out / split, root=out, num_classes=len(classes))
        assert records, split
        for record in records:
            assert Path(record.path).is_file(), record.path
            true_class = truth[name][stem(record.path)]
            assert name_key(classes[record.label]) == name_key(true_class), (split, record)
            checked += 1
    assert checked > 0


def test_classes_are_in_the_official_order_and_readable(prepared):
    _, out, _, _ = prepared
    assert read_class_names(out / "k400/classes.txt") == sorted(layouts.K400_CLASSES)
    assert read_class_names(out / "ucf101/classes.txt") == ["apply eye makeup", "handstand pushups", "yo yo"]
    assert read_class_names(out / "hmdb51/classes.txt") == ["brush hair", "kick", "kick ball"]
    assert read_class_names(out / "ssv2/classes.txt") == [t.replace("[", "").replace("]", "") for t in layouts.SSV2_TEMPLATES]
    # Community label files keep their own order; names take the dataset's spelling.
    assert read_class_names(out / "ucf101/b2n/base_classes.txt") == ["yo yo", "apply eye makeup"]
    assert read_class_names(out / "k400/b2n/classes.txt") == ["air drumming", "zumba", "passing American football (in game)", "abseiling"]


def test_splits_hold_the_videos_the_publishers_list(prepared):
    raw, out, truth, printed = prepared
    count = {file: len(read_split(out / file, root=out)) for file in (
        "k400/train.txt", "k400/val.txt", "k400/test.txt", "ucf101/train_split1.txt", "ucf101/test_split1.txt",
        "hmdb51/train_split2.txt", "hmdb51/test_split2.txt", "ssv2/train.txt", "ssv2/val.txt", "k600/subset1_test.txt",
    )}
    assert count == {
        "k400/train.txt": 12, "k400/val.txt": 7, "k400/test.txt": 4,  # one validation video never downloaded
        "ucf101/train_split1.txt": 18, "ucf101/test_split1.txt": 6,
        "hmdb51/train_split2.txt": 9, "hmdb51/test_split2.txt": 6,  # ids 1 and 2; 0 is in neither set
        "ssv2/train.txt": 9, "ssv2/val.txt": 6, "k600/subset1_test.txt": 12,
    }
    report = json.loads((out / "k400/prepare_report.json").read_text())
    (val,) = [s for s in report["splits"] if s["file"] == "k400/val.txt"]
    assert (val["listed"], val["written"], val["missing"]) == (8, 7, ["-k41va1_x_000011_000021"])
    assert "k400/val.txt: 7 videos (1 of 8 listed not found: -k41va1_x_000011_000021)" in printed["k400"]
    assert "k400/classes.txt: 4 classes" in printed["k400"]
    # The same video is listed in the community's novel_val.txt, as it was published.
    assert "k400/b2n/novel_val.txt: 3 videos (1 of 4 listed not found: val/-k41va1_x_000011_000021.mp4)" in printed["k400"]
    assert not report["label_mismatches"]
    assert not (out / "k600/test.txt").exists() and "test.csv has no labels: k600/test.txt not written" in printed["k600"]


def test_paths_are_relative_to_out_when_the_videos_are_under_it(prepared, tmp_path):
    raw, out, _, _ = prepared
    first = (out / "ucf101/train_split1.txt").read_text().splitlines()[0]
    assert Path(first.rsplit(" ", 1)[0]).is_absolute()  # videos outside out: absolute paths
    prepare("ucf101", root=raw / "ucf101")  # out defaults to root
    inside = (raw / "ucf101" / "ucf101/train_split1.txt").read_text().splitlines()[0]
    assert inside.startswith("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi ")


def test_community_labels_are_checked_against_the_dataset(tmp_path):
    raw, community = tmp_path / "ucf", tmp_path / "vifi"
    layouts.write_ucf101(raw, community)
    novel_val = community / "datasets_splits/base2novel_splits/ucf_splits/novel_val.txt"
    novel_val.write_text("v_YoYo_g01_c01.avi 0\n")  # a YoYo video labelled as the novel HandstandPushups
    report = prepare("ucf101", root=raw, out=tmp_path / "out", splits=community)
    assert report.label_mismatches == ["novel_val.txt: v_YoYo_g01_c01.avi is 'HandstandPushups' there, 'yoyo' in the dataset"]


def test_without_community_files_the_official_splits_are_still_written(tmp_path):
    raw = tmp_path / "hmdb"
    layouts.write_hmdb51(raw, tmp_path / "elsewhere")
    report = prepare("hmdb51", root=raw, out=tmp_path / "out")
    assert (tmp_path / "out/hmdb51/test_split3.txt").is_file() and not (tmp_path / "out/hmdb51/b2n").exists()
    assert any("no base-to-novel split files" in note and "--splits" in note for note in report.notes)


def test_clear_errors_for_wrong_folders_and_bad_annotations(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="--root .*no such folder"):
        prepare("ucf101", root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no 'classInd.txt' under"):
        prepare("ucf101", root=tmp_path / "empty")
    with pytest.raises(ValueError, match="dataset must be one of"):
        prepare("kinetics", root=tmp_path / "empty")
    raw = tmp_path / "k400"
    layouts.write_kinetics(raw, ["a", "b"], "k4")
    csv_file = raw / "annotations" / "validate.csv"
    csv_file.write_text(csv_file.read_text() + "b,zzz,ten,20,validate\n")
    with pytest.raises(DataFileError, match=r"validate.csv: 1 unreadable row\(s\):\n  line 6:"):
        prepare("k400", root=raw)
    bare = tmp_path / "no_videos"
    layouts.write_kinetics(bare, ["a", "b"], "k4")
    for video in (bare / "videos").rglob("*.mp4"):
        video.unlink()
    with pytest.raises(RuntimeError, match="none of the listed videos was found"):
        prepare("k400", root=bare)


def test_kinetics_csvs_of_the_first_releases_are_found(tmp_path):
    """Kinetics-400 was first published as kinetics_{train,val,test}.csv (mmaction2's layout)."""
    raw = tmp_path / "k400"
    truth, _ = layouts.write_kinetics(raw, ["a b", "c"], "k4")
    annotations = raw / "annotations"
    for old, new in (("train", "train"), ("validate", "val"), ("test", "test")):
        (annotations / f"{old}.csv").rename(annotations / f"kinetics_{new}.csv")
    report = prepare("k400", root=raw, out=tmp_path / "out")
    assert [(s.file, s.written) for s in report.splits] == [("k400/train.txt", 6), ("k400/val.txt", 3), ("k400/test.txt", 2)]


def test_missing_community_labels_name_the_splits_option(tmp_path):
    raw, community = tmp_path / "ucf", tmp_path / "vifi"
    layouts.write_ucf101(raw, community)
    (community / "labels" / "ucf_101_novel_labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"no 'ucf_101_novel_labels.csv' under .*vifi \(pass --splits <folder>\)"):
        prepare("ucf101", root=raw, out=tmp_path / "out", splits=community)


def test_ssv2_labels_with_repeated_or_non_integer_ids_are_refused(tmp_path):
    from froster.data.prepare.ssv2 import read_labels

    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"Tipping something over": "0", "Holding something": "0", "Pushing something": "1"}))
    with pytest.raises(DataFileError, match=r"labels.json: class ids are not 0\.\.2, each once"):
        read_labels(path)
    path.write_text(json.dumps({"Tipping something over": "first"}))
    with pytest.raises(DataFileError, match="labels.json: expected integer class ids"):
        read_labels(path)
