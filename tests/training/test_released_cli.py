"""``froster predict`` and ``froster eval`` take a released checkpoint directly, with the student named by flags."""
from __future__ import annotations

import json

import numpy as np
import torch

from froster.adapters.checkpoints import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD
from froster.adapters.vclip import VCLIP
from froster.cli import main
from froster.clip_loading import create_open_clip
from froster.data.synthetic import write_video
from froster.evaluation.predict import predict_file, read_test_views
from froster.testing import TINY_CLIP_NAME, tiny_clip_overrides
from froster.training.configs import DataConfig

FRAMES = 4
CLASSES = "juggling,surfing,archery"


def _froster_file(path) -> torch.nn.Module:
    """FROSTER's released layout (weight-averaged): the student under ``model.``, the projectors."""
    torch.manual_seed(3)
    tuned, _ = create_open_clip(TINY_CLIP_NAME, activation="quick_gelu", **tiny_clip_overrides())
    state = {f"model.{k}": v for k, v in tuned.state_dict().items()}
    state.update({f"projector_{s}.{i}.weight": torch.randn(32, 32) for s in "vt" for i in (0, 2)})
    torch.save({"model_state": state}, path)
    return tuned


def _video(path) -> str:
    rng = np.random.default_rng(0)
    write_video(path, rng.integers(0, 255, size=(24, 48, 64, 3), dtype=np.uint8), fps=24)
    return str(path)


def test_predict_reads_a_released_froster_file(tmp_path, capsys):
    tuned = _froster_file(tmp_path / "froster_b16.pth")
    video = _video(tmp_path / "clip.mp4")
    overrides = ["data.image_size=32", "data.num_test_clips=1", f"student.clip_overrides={json.dumps(tiny_clip_overrides())}"]
    status = main(["predict", video, "--classes", CLASSES, "--checkpoint", str(tmp_path / "froster_b16.pth"),
                   "--student", "vclip", "--frames", str(FRAMES), "--json", *overrides])
    assert status == 0
    got = {row["class"]: row["probability"] for row in json.loads(capsys.readouterr().out)[video]}

    # The model the file holds, built directly from the CLIP it was written from.
    data = DataConfig(num_frames=FRAMES, image_size=32, num_test_clips=1)
    expected = dict(predict_file(VCLIP(tuned, num_frames=FRAMES), video, CLASSES.split(","), data))
    assert got.keys() == expected.keys()
    for name in got:
        assert abs(got[name] - expected[name]) < 1e-5, (name, got[name], expected[name])


def test_a_released_file_without_a_known_student_is_a_usage_error(tmp_path, capsys):
    _froster_file(tmp_path / "froster_b16.pth")
    status = main(["predict", _video(tmp_path / "clip.mp4"), "--classes", CLASSES, "--checkpoint", str(tmp_path / "froster_b16.pth")])
    assert status == 2
    assert "--student" in capsys.readouterr().err
    status = main(["predict", _video(tmp_path / "clip.mp4"), "--classes", CLASSES, "--checkpoint", str(tmp_path / "froster_b16.pth"),
                   "--student", "nosuch"])
    assert status == 2
    assert "--student: unknown student 'nosuch'; known students: " in capsys.readouterr().err


def test_test_views_take_the_students_normalisation(tmp_path):
    video = _video(tmp_path / "clip.mp4")
    data = DataConfig(num_frames=FRAMES, image_size=32, num_test_clips=1)
    torch.manual_seed(0)
    student = VCLIP(create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())[0], num_frames=FRAMES)
    clip_views = read_test_views(video, data, student)
    student.pixel_mean, student.pixel_std = IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD  # as a ViFi-CLIP file sets them
    imagenet_views = read_test_views(video, data, student)
    # Written out: the same pixels, x in [0, 1], under each normalisation.
    mean_c, std_c = torch.tensor(CLIP_PIXEL_MEAN), torch.tensor(CLIP_PIXEL_STD)
    pixels = clip_views * std_c[:, None, None, None] + mean_c[:, None, None, None]
    mean_i, std_i = torch.tensor(IMAGENET_PIXEL_MEAN), torch.tensor(IMAGENET_PIXEL_STD)
    torch.testing.assert_close(imagenet_views, (pixels - mean_i[:, None, None, None]) / std_i[:, None, None, None], atol=1e-5, rtol=1e-5)
