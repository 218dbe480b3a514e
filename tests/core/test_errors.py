"""Bad input gets an error that names the argument, what was expected and what came."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from froster import ResidualDistiller
from froster.teachers import ModuleTeacher
from froster.testing import synthetic_video, tiny_prompts

from .toy_models import ToyImageTextModel


@pytest.fixture
def distiller(student, teacher):
    return ResidualDistiller(student, teacher)


@pytest.mark.parametrize(
    "video, error, message",
    [
        (torch.randn(2, 3, 32, 32), ValueError, r"video must have shape \(B, C, T, H, W\) \(5 dims\), got 4 dims"),
        (torch.randn(2, 1, 4, 32, 32), ValueError, r"video must have 3 channels .* got 1"),
        (torch.randn(2, 3, 6, 32, 32), ValueError, r"video has 6 frames .* num_frames=4"),
        (torch.zeros(2, 3, 4, 32, 32, dtype=torch.uint8), TypeError, r"video must be a floating-point tensor"),
        ([[1.0]], TypeError, r"video must be a torch.Tensor"),
    ],
)
def test_bad_video(distiller, video, error, message):
    with pytest.raises(error, match=message):
        distiller(video, tiny_prompts(3))


@pytest.mark.parametrize(
    "prompts, error, message",
    [
        ([], ValueError, "prompts is empty"),
        ("a video of a person surfing.", TypeError, "single str"),
        (["ok", 3], TypeError, "item 1 is int"),
        (torch.zeros(0, 16, dtype=torch.long), ValueError, r"K >= 1, got \(0, 16\)"),
        (torch.zeros(3, 16), TypeError, "integer tensor"),
    ],
)
def test_bad_prompts(distiller, prompts, error, message):
    with pytest.raises(error, match=message):
        distiller(synthetic_video(2, 4), prompts)


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (torch.tensor([0, 5]), ValueError, r"labels must lie in \[0, 5\) for 5 prompts, got values in \[0, 5\]"),
        (torch.tensor([-1, 0]), ValueError, r"labels must lie in \[0, 5\)"),
        (torch.tensor([0.0, 1.0]), TypeError, "labels must hold integer class indices"),
        (torch.tensor([0, 1, 2]), ValueError, r"labels must have shape \(2,\)"),
        ([0, 1], TypeError, "labels must be a torch.Tensor"),
    ],
)
def test_bad_labels(distiller, labels, error, message):
    with pytest.raises(error, match=message):
        distiller(synthetic_video(2, 4), tiny_prompts(5), labels=labels)


def test_non_finite_features_name_their_side(student, teacher):
    distiller = ResidualDistiller(student, teacher)
    with torch.no_grad():
        student.frame_proj.bias[0] = float("nan")
    with pytest.raises(FloatingPointError, match="student video features") as info:
        distiller(synthetic_video(2, 4), tiny_prompts(3))
    assert "teacher" not in str(info.value)

    broken = ToyImageTextModel()
    with torch.no_grad():
        broken.image_proj.bias[0] = float("inf")
    healthy = type(student)(embed_dim=32, tokenizer=student.tokenizer)
    distiller = ResidualDistiller(healthy, ModuleTeacher(broken, tokenizer=student.tokenizer, embed_dim=32))
    with pytest.raises(FloatingPointError, match="teacher frame features"):
        distiller(synthetic_video(2, 4), tiny_prompts(3))


def test_objects_without_the_protocol_are_refused(student, teacher):
    with pytest.raises(TypeError, match="student of type Linear does not offer the student protocol: missing encode_video, encode_text, logit_scale"):
        ResidualDistiller(nn.Linear(2, 2), teacher)
    with pytest.raises(TypeError, match="missing encode_frames"):
        ResidualDistiller(student, nn.Linear(2, 2))
    with pytest.raises(TypeError, match="has no encode_image"):
        ModuleTeacher(nn.Linear(2, 2))


def test_missing_embed_dim_asks_for_it(teacher):
    class NoDim(nn.Module):
        logit_scale = torch.tensor(0.0)

        def encode_video(self, video):
            return video.mean((1, 3, 4))

        def encode_text(self, tokens):
            return tokens.float()

    with pytest.raises(ValueError, match="pass student_dim="):
        ResidualDistiller(NoDim(), teacher)


def test_string_prompts_need_tokenizers(teacher):
    from .toy_models import ToyVideoStudent

    distiller = ResidualDistiller(ToyVideoStudent(embed_dim=32, tokenizer=None), teacher)
    with pytest.raises(TypeError, match="student has no tokenizer"):
        distiller(synthetic_video(2, 4), tiny_prompts(3))
