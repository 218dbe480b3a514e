"""timm_vit student: timm frames + projection, CLIP's text tower, no CLIP vision weights."""
from __future__ import annotations

import pytest
import torch

timm = pytest.importorskip("timm")

from froster import build_student  # noqa: E402
from froster.adapters.timm_vit import TimmViTStudent  # noqa: E402
from froster.clip_loading import create_open_clip  # noqa: E402
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts, tiny_student_kwargs  # noqa: E402

T = 4


def _student(**options):
    torch.manual_seed(0)
    return build_student("timm_vit", **{**tiny_student_kwargs(num_frames=T), **TimmViTStudent.tiny_kwargs, **options}).eval()


@pytest.fixture(scope="module")
def student():
    return _student()


def _timm_reference(student) -> torch.nn.Module:
    """timm's own model, built here as the student's builder is documented to build it, with the student's weights."""
    reference = timm.create_model("vit_base_patch16_clip_224", pretrained=False, num_classes=0, **TimmViTStudent.tiny_kwargs["timm_kwargs"])
    reference.load_state_dict(student.vision.state_dict())
    return reference.double().eval()


@pytest.mark.parametrize("changed", range(T))
def test_frames_are_the_timm_features_projected(student, changed):
    video = synthetic_video(2, T)
    other = video.clone()
    other[:, :, changed] = torch.randn_like(other[:, :, changed])
    reference, projection = _timm_reference(student), student.vision_proj.weight.double()  # (D, width)
    with torch.no_grad():
        frames, other_frames = student.encode_video(video), student.encode_video(other)  # (B, T, D)
        # num_classes=0: timm's forward gives the pooled pre-logits features (B, width) of one frame.
        expected = torch.stack([reference(video[:, :, t].double()) @ projection.T for t in range(T)], dim=1)  # (B, T, D)
        torch.testing.assert_close(frames.double(), expected, rtol=1e-5, atol=1e-5)
    untouched = [t for t in range(T) if t != changed]
    torch.testing.assert_close(other_frames[:, untouched], frames[:, untouched])  # frames are independent
    assert (other_frames[:, changed] - frames[:, changed]).abs().max() > 1e-4


def test_text_tower_is_clip_and_clip_vision_is_gone(student):
    assert not any(k.startswith("visual.") for k in student.state_dict())
    clip, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    clip.eval()
    converted = {student.clip_state_dict_key(k): v for k, v in clip.state_dict().items()}
    converted = {k: v for k, v in converted.items() if k is not None}
    missing, unexpected = student.load_state_dict(converted, strict=False)
    assert unexpected == [] and sorted(missing) == student.non_clip_state_keys()
    assert all(k.startswith(("vision.", "vision_proj.")) for k in missing)
    tokens = student.tokenizer(tiny_prompts())
    with torch.no_grad():
        torch.testing.assert_close(student.encode_text(tokens), clip.encode_text(tokens))


def test_any_timm_classifier_works_as_an_instance():
    # Not a ViT: a small ResNet, passed built; it takes any image size.
    resnet = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    student = _student(timm_model=resnet, timm_kwargs=None)
    assert student.image_size is None
    frames = student.encode_video(synthetic_video(1, T, size=48))
    assert frames.shape == (1, T, student.embed_dim)
    with pytest.raises(ValueError, match="timm_kwargs"):
        _student(timm_model=resnet)


def test_wrong_frame_size_is_named(student):
    with pytest.raises(ValueError, match="video frames are 48x48"):
        student.encode_video(synthetic_video(1, T, size=48))
