"""Miniature copies of the datasets as their publishers ship them, with the true class of every video.

Each writer builds the real file formats -- Kinetics CSVs, UCF101's ``ucfTrainTestlist``, HMDB51's
``testTrainMulti_7030_splits``, Something-Something's JSON files, and the community's split files
published with ViFi-CLIP (``datasets_splits/``, ``labels/``) -- around tiny real videos, and
returns ``{video file name without extension: published class name}``, the ground truth the
prepared files are checked against. Quirks of the originals are kept: CRLF line endings and a
folder/file spelling mismatch in UCF101 (``HandstandPushups/v_HandStandPushups_...``), trailing
spaces in HMDB51's files, quoted names with commas in label CSVs, Kinetics videos both in
per-class folders and flat.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from froster.data.synthetic import make_clip, write_video

_TEMPLATES: dict[str, Path] = {}


def _video(path: Path, container: str = "mp4") -> None:
    """A real 4-frame 16 px video at ``path`` (copied from one written per container)."""
    if container not in _TEMPLATES:
        frames = make_clip(0, 3, 4, 16, np.random.default_rng(0))
        template = Path(tempfile.mkdtemp()) / f"template.{container}"
        codec, muxer = {"mp4": (None, "mp4"), "avi": ("mpeg4", "avi"), "webm": ("libvpx-vp9", "webm")}[container]
        write_video(template, frames, fps=8, codec=codec, container_format=muxer, options=None if codec != "libvpx-vp9" else {})
        _TEMPLATES[container] = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATES[container], path)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# ---- Kinetics ---------------------------------------------------------------------------------

K400_CLASSES = ["zumba", "abseiling", "passing American football (in game)", "air drumming"]  # CSV order != sorted


def write_kinetics(root: Path, classes: list[str], name: str) -> tuple[dict[str, str], dict]:
    """``<root>/annotations/{train,validate,test}.csv`` and videos: train per class, val/test flat.

    Returns the truth and ``{(class, split): [clip, ...]}`` (including one validation clip that
    is listed but has no file, as happens with videos gone from YouTube).
    """
    truth, clips, rows = {}, {}, {"train": [], "validate": [], "test": []}
    folders = {"train": "train", "validate": "val", "test": "test"}
    for c, label in enumerate(classes):
        for split, count in (("train", 3), ("validate", 2), ("test", 1)):
            for i in range(count):
                youtube_id = f"-{name}{c}{split[:2]}{i}_x"  # leading '-' and '_' as real ids have
                start = 10 * i + c
                clip = f"{youtube_id}_{start:06d}_{start + 10:06d}"
                rows[split].append([label, youtube_id, str(start), str(start + 10), split])
                truth[clip] = label
                clips.setdefault((label, split), []).append(clip)
                if split == "train":
                    _video(root / "videos" / "train" / label.replace(" ", "_") / f"{clip}.mp4")
                elif (c, split, i) != (1, "validate", 1):  # never downloaded
                    _video(root / "videos" / folders[split] / f"{clip}.mp4")
    header = ["label", "youtube_id", "time_start", "time_end", "split"]
    for split, split_rows in rows.items():
        if name == "k6" and split == "test":  # Kinetics-600's test CSV carries no labels
            text = _csv([header[1:]] + [row[1:] for row in split_rows])
        else:
            text = _csv([header] + split_rows)
        _write(root / "annotations" / f"{split}.csv", text)
    return truth, clips


def _label_csv(path: Path, names: list[str]) -> None:
    _write(path, _csv([["id", "name"]] + [[str(i), n] for i, n in enumerate(names)]))


def write_k400(root: Path, community: Path) -> dict[str, str]:
    truth, clips = write_kinetics(root, K400_CLASSES, "k4")
    base, novel = ["air drumming", "zumba"], ["passing American football (in game)", "abseiling"]
    _label_csv(community / "labels" / "kinetics_400_base_labels.csv", base)
    _label_csv(community / "labels" / "kinetics_400_novel_labels.csv", novel)
    folder = community / "datasets_splits" / "base2novel_splits" / "k400_splits"
    for k in (1, 2, 3):
        lines = [f"train/{clips[(cls, 'train')][k - 1]}.mp4 {label}" for label, cls in enumerate(base)]
        _write(folder / f"fs_base_s{k}_train.txt", "\n".join(lines) + "\n")
    for side, names in (("base", base), ("novel", novel)):
        lines = [f"val/{clip}.mp4 {label}" for label, cls in enumerate(names) for clip in clips[(cls, "validate")]]
        _write(folder / f"{side}_val.txt", "\n".join(lines) + "\n")
    return truth


K600_CLASSES = ["acting in play", "abseiling", "adjusting glasses", "zumba", "arguing"]


def write_k600(root: Path, community: Path) -> dict[str, str]:
    truth, clips = write_kinetics(root, K600_CLASSES, "k6")
    novel_sets = {1: ["acting in play", "adjusting glasses"], 2: ["arguing", "acting in play"], 3: ["adjusting glasses", "arguing"]}
    folders = {"train": "train", "validate": "val", "test": "test"}
    for k, names in novel_sets.items():
        _label_csv(community / "labels" / f"ZS_split{k}_K600.csv", names)
        lines = [
            f"{folders[split]}/{clip}.mp4 {label}"
            for label, cls in enumerate(names) for split in folders for clip in clips[(cls, split)]
        ]
        _write(community / "datasets_splits" / "k600_splits" / f"ZS_split{k}_K600_eval.txt", "\n".join(lines) + "\n")
    return truth


# ---- UCF101 -----------------------------------------------------------------------------------

UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]


def _ucf_file(cls: str, group: int, clip: int) -> str:
    spelled = "HandStandPushups" if cls == "HandstandPushups" else cls  # the dataset's own quirk
    return f"v_{spelled}_g{group:02d}_c{clip:02d}.avi"


def write_ucf101(root: Path, community: Path) -> dict[str, str]:
    lists = root / "ucfTrainTestlist"
    _write(lists / "classInd.txt", "".join(f"{i} {c}\n" for i, c in enumerate(UCF_CLASSES, start=1)), "\r\n")
    truth = {}
    for c, cls in enumerate(UCF_CLASSES):
        for group in range(1, 5):
            for clip in (1, 2):
                name = _ucf_file(cls, group, clip)
                truth[name[:-4]] = cls
                _video(root / "UCF-101" / cls / name, "avi")
    for k in (1, 2, 3):  # split k tests on group k, trains on the others
        train = [
            f"{cls}/{_ucf_file(cls, g, x)} {c + 1}"
            for c, cls in enumerate(UCF_CLASSES) for g in range(1, 5) if g != k for x in (1, 2)
        ]
        test = [f"{cls}/{_ucf_file(cls, k, x)}" for cls in UCF_CLASSES for x in (1, 2)]
        _write(lists / f"trainlist0{k}.txt", "\n".join(train) + "\n", "\r\n")
        _write(lists / f"testlist0{k}.txt", "\n".join(test) + "\n", "\r\n")
    base, novel = ["YoYo", "ApplyEyeMakeup"], ["HandstandPushups"]
    _label_csv(community / "labels" / "ucf_101_base_labels.csv", base)
    _label_csv(community / "labels" / "ucf_101_novel_labels.csv", novel)
    folder = community / "datasets_splits" / "base2novel_splits" / "ucf_splits"
    for k in (1, 2, 3):
        _write(folder / f"fs_base_s{k}_train.txt", "".join(f"{_ucf_file(cls, k + 1, 1)} {label}\n" for label, cls in enumerate(base)))
    _write(folder / "base_val.txt", "".join(f"{_ucf_file(cls, 1, x)} {label}\n" for label, cls in enumerate(base) for x in (1, 2)))
    _write(folder / "novel_val.txt", "".join(f"{_ucf_file(cls, 1, x)} {label}\n" for label, cls in enumerate(novel) for x in (1, 2)))
    return truth


# ---- HMDB51 -----------------------------------------------------------------------------------

HMDB_CLASSES = ["kick_ball", "brush_hair", "kick"]


def write_hmdb51(root: Path, community: Path) -> dict[str, str]:
    truth = {}
    videos = {cls: [f"Some_Movie_{cls}_f_cm_np1_ri_med_{i}.avi" for i in range(6)] for cls in HMDB_CLASSES}
    for cls, names in videos.items():
        for name in names:
            truth[name[:-4]] = cls
            _video(root / "hmdb51" / cls / name, "avi")
        for k in (1, 2, 3):
            uses = ["1", "1", "2", "0", "1", "2"][k - 1:] + ["1", "1", "2", "0", "1", "2"][: k - 1]
            text = "".join(f"{name} {use} \n" for name, use in zip(names, uses))  # official trailing space
            _write(root / "testTrainMulti_7030_splits" / f"{cls}_test_split{k}.txt", text)
    base, novel = ["brush hair", "kick"], ["kick ball"]
    _label_csv(community / "labels" / "hmdb_51_base_labels.csv", base)
    _label_csv(community / "labels" / "hmdb_51_novel_labels.csv", novel)
    folder = community / "datasets_splits" / "base2novel_splits" / "hmdb_splits"
    for k in (1, 2, 3):
        _write(folder / f"fs_base_s{k}_train.txt", "".join(f"{videos[c.replace(' ', '_')][k]} {label}\n" for label, c in enumerate(base)))
    _write(folder / "base_val.txt", "".join(f"{videos[c.replace(' ', '_')][0]} {label}\n" for label, c in enumerate(base)))
    _write(folder / "novel_val.txt", "".join(f"{videos[c.replace(' ', '_')][0]} {label}\n" for label, c in enumerate(novel)))
    return truth


# ---- Something-Something v2 -------------------------------------------------------------------

SSV2_TEMPLATES = [
    "Pushing [something] from left to right",
    "Pretending to pour [something] out of [something], but [something] is empty",
    "Putting [something] on a surface",
]


def write_ssv2(root: Path, community: Path) -> dict[str, str]:
    classes = [t.replace("[", "").replace("]", "") for t in SSV2_TEMPLATES]
    _write(root / "labels" / "labels.json", json.dumps({name: str(i) for i, name in enumerate(classes)}, indent=1))
    truth, entries = {}, {"train": [], "validation": []}
    video_id = 100
    for c, template in enumerate(SSV2_TEMPLATES):
        for split, count in (("train", 3), ("validation", 2)):
            for _ in range(count):
                video_id += 7
                entries[split].append({"id": str(video_id), "label": "pushing a pen", "template": template, "placeholders": ["a pen"]})
                truth[str(video_id)] = classes[c]
                _video(root / "20bn-something-something-v2" / f"{video_id}.webm", "webm")
    for split, items in entries.items():
        _write(root / "labels" / f"{split}.json", json.dumps(items))
    base, novel = [classes[2], classes[0]], [classes[1]]
    _label_csv(community / "labels" / "ssv2_174_base_labels.csv", base)
    _label_csv(community / "labels" / "ssv2_174_novel_labels.csv", novel)
    by_class = {cls: [v for v, c in truth.items() if c == cls] for cls in classes}
    folder = community / "datasets_splits" / "base2novel_splits" / "ssv2_splits"
    for k in (1, 2, 3):
        _write(folder / f"fs_base_s{k}_train.txt", "".join(f"{by_class[c][k - 1]}.webm {label}\n" for label, c in enumerate(base)))
    _write(folder / "base_val.txt", "".join(f"{by_class[c][3]}.webm {label}\n" for label, c in enumerate(base)))
    _write(folder / "novel_val.txt", "".join(f"{v}.webm {label}\n" for label, c in enumerate(novel) for v in by_class[c][3:]))
    return truth


WRITERS = {"k400": write_k400, "k600": write_k600, "ucf101": write_ucf101, "hmdb51": write_hmdb51, "ssv2": write_ssv2}
