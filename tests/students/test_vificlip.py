"""ViFi-CLIP: CLIP's image encoder on each frame, mean-pooled by the head, every weight trained."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from froster.adapters.vificlip import ViFiCLIP
from froster.clip_loading import create_open_clip
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts

from .conftest import build_tiny


@pytest.fixture
def clip():
    torch.manual_seed(0)
    model, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    return model.eval()


def test_frames_are_clip_image_features(clip):
    video = synthetic_video(2, 3)
    images = video.permute(0, 2, 1, 3, 4).reshape(6, 3, 32, 32)
    expected = clip.encode_image(images).view(2, 3, -1)
    student = ViFiCLIP(clip, num_frames=3).eval()
    torch.testing.assert_close(student.encode_video(video), expected)


def test_text_and_state_dict_are_clips(clip):
    tokens = ViFiCLIP(clip, num_frames=2).tokenizer(tiny_prompts())
    expected = clip.encode_text(tokens)
    reference_keys = list(create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())[0].state_dict())
    student = ViFiCLIP(clip, num_frames=2)
    torch.testing.assert_close(student.encode_text(tokens), expected)
    assert list(student.state_dict()) == reference_keys
    assert all(p.requires_grad for p in student.parameters())  # full fine-tuning, text tower included


def test_head_is_cosine_of_the_mean_frame_feature():
    student = build_tiny("vificlip")
    frames, text = torch.randn(2, 4, 32), torch.randn(5, 32)
    expected = student.logit_scale.exp() * F.normalize(frames.mean(1), dim=-1) @ F.normalize(text, dim=-1).t()
    torch.testing.assert_close(student.classify(frames, text), expected)
    video, tokens = synthetic_video(2, 4), student.tokenizer(tiny_prompts())
    torch.testing.assert_close(student(video, tokens), student.classify(student.encode_video(video), student.encode_text(tokens)))


@settings(max_examples=5, deadline=None)
@given(permutation=st.permutations(list(range(4))), seed=st.integers(0, 2**16))
def test_frames_are_encoded_independently(permutation, seed):
    # Permuting the frames permutes the features: no frame sees another.
    student = build_tiny("vificlip", num_frames=4).eval()
    video = synthetic_video(2, 4, seed=seed)
    with torch.no_grad():
        features = student.encode_video(video)
        permuted = student.encode_video(video[:, :, permutation])
    torch.testing.assert_close(permuted, features[:, permutation], atol=1e-5, rtol=1e-4)


def test_frames_of_the_wrong_size_are_refused():
    student = build_tiny("vificlip")
    with pytest.raises(ValueError, match="32x32"):
        student.encode_video(torch.zeros(1, 3, 4, 48, 48))
