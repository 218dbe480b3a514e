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


def test_a_student_without_embed_dim_is_checked_at_the_first_forward(teacher):
    class NoDim(nn.Module):  # features of width 3, the teacher's are 32
        logit_scale = torch.tensor(0.0)

        def encode_video(self, video):
            return video.mean((3, 4)).transpose(1, 2)  # (B, T, 3)

        def encode_text(self, tokens):
            return tokens[:, :3].float()

    distiller = ResidualDistiller(NoDim(), teacher)  # nothing to ask for yet
    with pytest.raises(ValueError, match=r"student features have width 3 but the teacher's have 32.*project_to_teacher=True"):
        distiller(synthetic_video(2, 4), tiny_prompts(3))
    with pytest.raises(ValueError, match="pass student_dim="):
        ResidualDistiller(NoDim(), teacher, project_to_teacher=True)


def test_string_prompts_need_a_tokenizer_on_one_side(teacher):
    from .toy_models import ToyVideoStudent

    teacher.tokenizer, tokenizer = None, teacher.tokenizer
    try:
        distiller = ResidualDistiller(ToyVideoStudent(embed_dim=32, tokenizer=None), teacher, teacher_dim=32)
        with pytest.raises(TypeError, match="neither the student nor the teacher has a tokenizer"):
            distiller(synthetic_video(2, 4), tiny_prompts(3))
    finally:
        teacher.tokenizer = tokenizer


@pytest.fixture
def clip_distiller(teacher):
    from froster import build_student
    from froster.testing import tiny_student_kwargs

    return ResidualDistiller(build_student("vclip", **tiny_student_kwargs(num_frames=4)), teacher)


@pytest.mark.parametrize(
    "make_tokens, message",
    [
        (lambda tok: torch.cat([tok, tok[:, :4]], dim=1), r"prompts as tokens must have 16 columns \(the context length of the student\), got shape \(3, 20\)"),
        (lambda tok: tok[:, :8], r"16 columns .* got shape \(3, 8\)"),
        (lambda tok: tok.masked_fill(tok == tok.max(), 60000), r"prompts as tokens must hold ids in \[0, 49408\) \(the vocabulary of the student\), got ids in \[0, 60000\]"),
        (lambda tok: tok - 1, r"ids in \[0, 49408\) .* got ids in \[-1, "),
    ],
    ids=["too long", "too short", "id past the vocabulary", "negative id"],
)
def test_token_tensors_are_checked_against_the_text_encoders(clip_distiller, make_tokens, message):
    tokens = make_tokens(clip_distiller.teacher.tokenizer(tiny_prompts(3)))
    with pytest.raises(ValueError, match=message):
        clip_distiller(synthetic_video(2, 4), tokens)
    with pytest.raises(ValueError, match=message):
        clip_distiller.predict(synthetic_video(2, 4), tokens)


def test_token_limits_of_a_teacher_are_checked_too(student, teacher):
    # The toy student's bag of embeddings takes any length; the tiny CLIP teacher does not.
    tokens = teacher.tokenizer(tiny_prompts(3))
    with pytest.raises(ValueError, match=r"16 columns \(the context length of the teacher\), got shape \(3, 20\)"):
        ResidualDistiller(student, teacher)(synthetic_video(2, 4), torch.cat([tokens, tokens[:, :4]], dim=1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_video_of_another_dtype_than_the_student_is_named(clip_distiller, dtype):
    video = synthetic_video(2, 4).to(dtype)
    message = rf"video has dtype {dtype} but the student's weights are torch.float32: convert it with video.to\(torch.float32\)"
    with pytest.raises(TypeError, match=message):
        clip_distiller(video, tiny_prompts(3))
    with pytest.raises(TypeError, match=message):
        clip_distiller.predict(video, tiny_prompts(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts float32 inputs itself, not float64
        assert clip_distiller.predict(synthetic_video(2, 4), tiny_prompts(3)).shape == (2, 3)
        with pytest.raises(TypeError, match="video has dtype torch.float64"):
            clip_distiller.predict(synthetic_video(2, 4).double(), tiny_prompts(3))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"beta": float("nan")}, "beta: expected a finite number >= 0, got nan"), ({"alpha": float("inf")}, "alpha: expected a finite number >= 0, got inf"),
     ({"hidden_dim": 0}, "hidden_dim: expected an integer >= 1 or null, got 0")],
)
def test_distiller_arguments_are_checked(student, teacher, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResidualDistiller(student, teacher, **kwargs)
