"""The MLP activation follows the weights: an OpenAI-format archive through every documented path.

OpenAI's CLIP computes QuickGELU; open_clip's plain ``ViT-B-16`` builds exact GELU. The archive
here is a tiny CLIP built with QuickGELU and saved the way OpenAI published CLIP (a TorchScript
archive of the model traced on image and text). Loaded through any path, it must give the source
model's features; a model built with GELU must refuse it.
"""
from __future__ import annotations

import pytest
import torch

from froster import build_student
from froster.adapters.checkpoints import load_student_checkpoint
from froster.clip_activation import (
    GELU,
    QUICK_GELU,
    ActivationMismatchError,
    model_activation,
    resolve_activation,
    torchscript_activation,
)
from froster.clip_loading import create_open_clip
from froster.recipes import list_recipes, load_recipe, recipe_dict
from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts, write_openai_archive
from froster.training.build import build_distiller, config_activation
from froster.training.configs import RunConfig, StudentConfig, TeacherConfig

T = 3


@pytest.fixture(scope="module")
def openai_archive(tmp_path_factory):
    """A tiny QuickGELU CLIP, the model it came from, and its OpenAI-format archive."""
    torch.manual_seed(11)
    source, tokenizer = create_open_clip(TINY_CLIP_NAME, activation=QUICK_GELU, **tiny_clip_overrides())
    path = tmp_path_factory.mktemp("openai") / "ViT-B-16.pt"
    write_openai_archive(path, source.eval(), tokenizer)
    return source, tokenizer, path


def _source_features(source, tokenizer):
    video = synthetic_video(2, T)
    with torch.no_grad():
        frames = source.encode_image(video.transpose(1, 2).flatten(0, 1)).reshape(2, T, -1)  # (B, T, D)
        text = source.encode_text(tokenizer(tiny_prompts(4)))  # (K, D)
    return video, frames, text


def _assert_gives_source_features(model_frames, model_text, openai_archive):
    """``model_frames`` (when given) and ``model_text`` compute what the archive's source model computes."""
    source, tokenizer, _ = openai_archive
    video, frames, text = _source_features(source, tokenizer)
    with torch.no_grad():
        if model_frames is not None:
            torch.testing.assert_close(model_frames(video), frames)
        torch.testing.assert_close(model_text(tokenizer(tiny_prompts(4))), text)


def test_the_archive_declares_quick_gelu(openai_archive):
    assert torchscript_activation(openai_archive[2]) == QUICK_GELU


@pytest.mark.parametrize("name", ["vificlip", "lora", "vclip", "xclip"])
def test_students_built_from_the_archive_compute_quick_gelu(openai_archive, name):
    # `ViT-B-16` alone builds GELU; the archive's activation wins.
    student = build_student(name, clip=TINY_CLIP_NAME, pretrained=str(openai_archive[2]), num_frames=T, **tiny_clip_overrides()).eval()
    assert model_activation(student) == QUICK_GELU
    # vificlip and lora encode frames independently with CLIP's image encoder; in vclip and xclip
    # frames meet inside the blocks, so only their text tower is CLIP's as it is.
    frames = student.encode_video if name in ("vificlip", "lora") else None
    _assert_gives_source_features(frames, student.encode_text, openai_archive)


def test_teacher_built_from_the_archive_gives_its_features(openai_archive):
    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, str(openai_archive[2]), **tiny_clip_overrides())
    assert model_activation(teacher.model) == QUICK_GELU
    _assert_gives_source_features(teacher.encode_frames, teacher.encode_text, openai_archive)


def test_run_config_builds_student_and_teacher_from_the_archive(openai_archive):
    path = str(openai_archive[2])
    config = RunConfig(
        student=StudentConfig(name="vificlip", clip=TINY_CLIP_NAME, pretrained=path, clip_overrides=tiny_clip_overrides()),
        teacher=TeacherConfig(clip=TINY_CLIP_NAME, pretrained=path, clip_overrides=tiny_clip_overrides()),
    )
    config.data.num_frames = T
    distiller = build_distiller(config).eval()
    student, teacher = distiller.student, distiller.teacher
    _assert_gives_source_features(teacher.encode_frames, teacher.encode_text, openai_archive)
    _assert_gives_source_features(
        lambda video: student.encode_images(video.transpose(1, 2).flatten(0, 1)).reshape(2, T, -1), student.encode_text, openai_archive
    )


def test_a_gelu_model_computes_something_else(openai_archive):
    # What the tests above would see with the wrong activation: the same weights, other features.
    source, tokenizer, path = openai_archive
    wrong, _ = create_open_clip(TINY_CLIP_NAME, str(path), activation=GELU, allow_activation_mismatch=True, **tiny_clip_overrides())
    assert model_activation(wrong) == GELU
    _, frames, _ = _source_features(source, tokenizer)
    video = synthetic_video(2, T)
    with torch.no_grad():
        got = wrong.encode_image(video.transpose(1, 2).flatten(0, 1)).reshape(2, T, -1)
    assert (got - frames).abs().max() > 1e-3


def test_gelu_models_refuse_the_archive(openai_archive):
    path = str(openai_archive[2])
    with pytest.raises(ActivationMismatchError, match=r"trained with quick_gelu but gelu was asked for"):
        create_open_clip(TINY_CLIP_NAME, path, activation=GELU, **tiny_clip_overrides())
    with pytest.raises(ActivationMismatchError, match="quick_gelu"):
        build_student("vificlip", clip=TINY_CLIP_NAME, pretrained=path, num_frames=T, quick_gelu=False, **tiny_clip_overrides())
    gelu_clip, _ = create_open_clip(TINY_CLIP_NAME, activation=GELU, **tiny_clip_overrides())
    with pytest.raises(ActivationMismatchError, match=r"trained with quick_gelu but CLIP was built with gelu.*activation='quick_gelu'"):
        create_open_clip(gelu_clip, path)
    gelu_student = build_student("vificlip", clip=TINY_CLIP_NAME, num_frames=T, **tiny_clip_overrides())
    with pytest.raises(ActivationMismatchError, match="allow_activation_mismatch=True"):
        load_student_checkpoint(gelu_student, path)
    report = load_student_checkpoint(gelu_student, path, allow_activation_mismatch=True)  # the explicit override
    assert report.layout == "clip"


def test_activation_of_open_clip_tags_and_names():
    assert resolve_activation("ViT-B-16", "openai") == QUICK_GELU
    assert resolve_activation("ViT-B-16", "laion2b_s34b_b88k") == GELU
    assert resolve_activation("ViT-B-16") == GELU
    assert resolve_activation("ViT-B-16-quickgelu") == QUICK_GELU
    assert resolve_activation("ViT-B-16-quickgelu", "openai") == QUICK_GELU
    with pytest.raises(ActivationMismatchError, match="openai"):
        resolve_activation("ViT-B-16", "openai", GELU)
    assert resolve_activation("ViT-B-16", "openai", GELU, allow_mismatch=True) == GELU
    with pytest.raises(ActivationMismatchError, match="laion2b"):
        resolve_activation("ViT-B-16", "laion2b_s34b_b88k", QUICK_GELU)
    with pytest.raises(ValueError, match="activation must be one of"):
        resolve_activation("ViT-B-16", None, "relu")


def test_tags_of_open_clip_releases_that_do_not_record_the_activation(monkeypatch):
    # open_clip before 2.27: pretrained configs carry no "quick_gelu" key.
    import open_clip

    real = open_clip.get_pretrained_cfg

    def without_the_key(name, tag):
        return {k: v for k, v in real(name, tag).items() if k != "quick_gelu"}

    monkeypatch.setattr(open_clip, "get_pretrained_cfg", without_the_key)
    assert resolve_activation("ViT-B-16", "openai") == QUICK_GELU
    assert resolve_activation("ViT-B-16", "laion2b_s34b_b88k") == GELU


def test_gelu_archives_are_read_as_gelu(tmp_path):
    torch.manual_seed(0)
    source, tokenizer = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    write_openai_archive(tmp_path / "gelu.pt", source.eval(), tokenizer)
    assert torchscript_activation(tmp_path / "gelu.pt") == GELU
    model, _ = create_open_clip(TINY_CLIP_NAME, str(tmp_path / "gelu.pt"), **tiny_clip_overrides())
    assert model_activation(model) == GELU


@pytest.mark.parametrize("name", [n for n in list_recipes() if n != "tiny_synthetic"])
def test_shipped_recipes_build_the_papers_quick_gelu_model(name):
    raw, config = recipe_dict(name), load_recipe(name)
    assert raw["student"]["activation"] == raw["teacher"]["activation"] == QUICK_GELU  # said, not inferred
    assert config_activation(config.student) == config_activation(config.teacher) == QUICK_GELU
    assert resolve_activation(config.student.clip, config.student.pretrained, config.student.activation) == QUICK_GELU
