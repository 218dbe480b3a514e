"""Every CLIP-vision student works on other open_clip ViT families, not only on ViT-B/16.

The families keep their own patch size and layout (B/32: 32 px patches; L/14: 14 px patches,
three heads here), shrunk in width and depth so the test stays fast.
"""
from __future__ import annotations

import pytest
import torch

from froster import ResidualDistiller, build_student, list_students
from froster.registry import get_student_builder
from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CONTEXT_LENGTH, synthetic_video, tiny_prompts

FAMILIES = {
    "ViT-B-32": dict(embed_dim=32, vision_cfg=dict(width=64, layers=2, head_width=32, patch_size=32, image_size=64)),
    "ViT-L-14": dict(embed_dim=48, vision_cfg=dict(width=96, layers=2, head_width=32, patch_size=14, image_size=28)),
}
TEXT_CFG = dict(width=64, layers=1, heads=2, context_length=TINY_CONTEXT_LENGTH)

# Students with their own tiny settings (`tiny_kwargs`) bring a vision tower of their own.
CLIP_VISION_STUDENTS = [name for name in list_students() if getattr(get_student_builder(name), "tiny_kwargs", None) is None]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("name", CLIP_VISION_STUDENTS)
def test_student_on_another_vit_family(name, family):
    overrides = dict(FAMILIES[family], text_cfg=TEXT_CFG)
    torch.manual_seed(0)
    student = build_student(name, clip=family, pretrained=None, num_frames=3, **overrides)
    teacher = OpenCLIPTeacher.from_pretrained(family, **overrides)
    size = overrides["vision_cfg"]["image_size"]
    video = synthetic_video(2, 3, size=size)
    assert student.encode_video(video).shape == (2, 3, overrides["embed_dim"])
    out = ResidualDistiller(student, teacher)(video, tiny_prompts(3), labels=torch.tensor([0, 2]))
    out.loss.backward()
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
