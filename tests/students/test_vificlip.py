"""ViFi-CLIP: CLIP's image encoder on each frame, mean-pooled by the head, every weight trained."""
from __future__ import annotations

import copy

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


def test_logits_are_clip_on_each_frame_mean_pooled(clip):
    # The reference is open_clip's own model with the same weights, kept apart from the student
    # (which adopts the modules of the instance it is given), everything in fp64.
    reference = copy.deepcopy(clip).double()
    student = ViFiCLIP(clip, num_frames=3).double().eval()
    video, tokens = synthetic_video(2, 3).double(), student.tokenizer(tiny_prompts())
    with torch.no_grad():
        frames = torch.stack([reference.encode_image(video[:, :, t]) for t in range(3)], dim=1)  # (B, T, D)
        text = reference.encode_text(tokens)  # (K, D)
        video_feature = F.normalize(frames.mean(dim=1), dim=-1)  # (B, D)
        expected = reference.logit_scale.exp() * video_feature @ F.normalize(text, dim=-1).T  # (B, K)
        torch.testing.assert_close(student.encode_video(video), frames, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(student.encode_text(tokens), text, rtol=1e-10, atol=1e-10)
        # The head takes its logits in fp32 whatever the features' dtype.
        torch.testing.assert_close(student(video, tokens), expected.float(), rtol=1e-6, atol=1e-5)


def test_state_dict_is_clips_and_every_weight_trains(clip):
    reference_keys = list(create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())[0].state_dict())
    student = ViFiCLIP(clip, num_frames=2)
    assert list(student.state_dict()) == reference_keys
    assert all(p.requires_grad for p in student.parameters())  # full fine-tuning, text tower included


def test_head_is_cosine_of_the_mean_frame_feature():
    student = build_tiny("vificlip")
    frames, text = torch.randn(2, 4, 32), torch.randn(5, 32)
    expected = student.logit_scale.exp() * F.normalize(frames.mean(1), dim=-1) @ F.normalize(text, dim=-1).t()
    torch.testing.assert_close(student.classify(frames, text), expected)


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
