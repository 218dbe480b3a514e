"""Spatial transforms: output layout and sizes, CLIP normalisation, shared randomness across frames."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision")

from froster.data.transforms import CLIP_MEAN, CLIP_STD, TestTransform, TrainTransform  # noqa: E402

MEAN = torch.tensor(CLIP_MEAN).view(3, 1, 1, 1)
STD = torch.tensor(CLIP_STD).view(3, 1, 1, 1)


def _frames(*lead, t=4, h=40, w=56, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*lead, t, 3, h, w), dtype=torch.uint8, generator=generator)


def test_train_output_layout_size_and_dtype():
    out = TrainTransform(crop_size=32, short_side=(32, 40))(_frames())
    assert out.shape == (3, 4, 32, 32) and out.dtype == torch.float32 and out.is_contiguous()


def test_test_views_keep_the_view_axis():
    out = TestTransform(size=32)(_frames(3))
    assert out.shape == (3, 3, 4, 32, 32)
    # Each view is transformed as if alone.
    torch.testing.assert_close(out[1], TestTransform(size=32)(_frames(3)[1]))


def test_normalisation_is_clips_mean_and_std():
    colour = (torch.tensor(CLIP_MEAN) * 255).round().to(torch.uint8)
    frames = colour.view(1, 3, 1, 1).expand(4, 3, 40, 56).clone()
    for transform in (TestTransform(size=32), TrainTransform(crop_size=32, short_side=(32, 40))):
        assert transform(frames).abs().max() < 0.01  # the mean colour maps to zero
    white = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    torch.testing.assert_close(TestTransform(size=32)(white), ((1 - MEAN) / STD).expand(3, 2, 32, 32))


def test_centre_crop_of_the_resized_frames():
    frames = _frames(h=32, w=64)
    out = TestTransform(size=32)(frames)  # resize is the identity here; crop columns 16..47
    expected = ((frames[..., 16:48].float() / 255).transpose(0, 1) - MEAN) / STD
    torch.testing.assert_close(out, expected)


def test_training_randomness_is_shared_by_all_frames_and_varies_between_calls():
    frame = _frames(t=1, h=48, w=64)
    frames = frame.expand(6, 3, 48, 64)
    transform = TrainTransform(crop_size=32, short_side=(32, 48))
    outs = [transform(frames) for _ in range(8)]
    for out in outs:  # identical input frames stay identical: one crop, one flip per clip
        assert all(torch.equal(out[:, 0], out[:, t]) for t in range(6))
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_flip_can_be_turned_off_and_bad_ranges_fail():
    frames = _frames(h=32, w=32)
    transform = TrainTransform(crop_size=32, short_side=(32, 32), hflip=False)
    torch.testing.assert_close(transform(frames), TestTransform(size=32)(frames))
    with pytest.raises(ValueError, match="short_side"):
        TrainTransform(short_side=(256, 224))
    with pytest.raises(ValueError, match="T, 3, H, W"):
        TestTransform(size=32)(torch.zeros(4, 32, 32, 3, dtype=torch.uint8))
