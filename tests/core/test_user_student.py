"""The README's promise: any model with encode_video, encode_text and a logit_scale is a student.

A user's own student wraps an open_clip model in ten lines: no embed_dim, no tokenizer, no
subclassing. With string prompts and a teacher built from an open_clip model, it trains in a
plain loop; its feature width is checked at the first forward, its prompts use the teacher's
tokenizer (the teacher is the CLIP it started from), and the teacher's width comes from the
teacher.
"""
from __future__ import annotations

import copy
import logging

import pytest
import torch
import torch.nn as nn

from froster import ResidualDistiller
from froster.clip_loading import create_open_clip
from froster.teachers import ModuleTeacher, OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts

from .toy_models import ToyImageTextModel


class MyStudent(nn.Module):
    """Ten lines a user writes: CLIP per frame, CLIP's text tower, CLIP's temperature."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.clip, self.logit_scale = clip, clip.logit_scale

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, T, D)
        b, c, t, h, w = video.shape
        return self.clip.encode_image(video.transpose(1, 2).reshape(b * t, c, h, w)).reshape(b, t, -1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:  # (K, L) -> (K, D)
        return self.clip.encode_text(tokens)


def test_a_users_own_student_trains_in_a_ten_line_loop(caplog):
    torch.manual_seed(0)
    clip, tokenizer = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    teacher = ModuleTeacher(copy.deepcopy(clip), tokenizer=tokenizer)  # the CLIP the student starts from
    student = MyStudent(clip)
    with caplog.at_level(logging.INFO, logger="froster.distiller"):
        distiller = ResidualDistiller(student, teacher)
        optimizer = torch.optim.AdamW(distiller.parameters(), lr=1e-3)
        video, labels, prompts = synthetic_video(4, 3), torch.tensor([0, 1, 2, 0]), tiny_prompts(3)
        losses = []
        for _ in range(8):
            out = distiller(video, prompts, labels=labels)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            losses.append(out.loss.item())
    assert losses[-1] < losses[0]
    said = [r.getMessage() for r in caplog.records if "tokenizer" in r.getMessage()]
    assert len(said) == 1 and "MyStudent" in said[0], said  # said once, not every step
    # The student's text really went through the teacher's tokenizer: same tokens, same CLIP.
    with torch.no_grad():
        torch.testing.assert_close(distiller._student_text([prompts]), clip.encode_text(tokenizer(prompts)))


def test_the_teachers_width_comes_from_the_teacher_and_the_students_is_checked():
    torch.manual_seed(0)
    wide, tokenizer = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides(embed_dim=48))
    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, **tiny_clip_overrides())  # D = 32
    distiller = ResidualDistiller(MyStudent(wide), teacher)
    assert distiller.teacher_dim == 32 and distiller.video_projector.fc1.in_features == 32
    with pytest.raises(ValueError, match=r"width 48 but the teacher's have 32.*project_to_teacher=True"):
        distiller(synthetic_video(2, 3), tiny_prompts(3))
    mapped = ResidualDistiller(MyStudent(wide), teacher, project_to_teacher=True, student_dim=48)
    out = mapped(synthetic_video(2, 3), tiny_prompts(3), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert mapped.to_teacher.weight.grad is not None


def test_a_module_teacher_of_another_family_needs_no_embed_dim():
    # Not open_clip: no visual.output_dim, no text_projection, no embed_dim; one encoding tells D.
    torch.manual_seed(0)
    clip, tokenizer = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides(embed_dim=24))
    teacher = ModuleTeacher(ToyImageTextModel(embed_dim=24), tokenizer=tokenizer)
    assert teacher.embed_dim is None
    distiller = ResidualDistiller(MyStudent(clip), teacher)
    assert distiller.teacher_dim == 24
    out = distiller(synthetic_video(2, 3), tiny_prompts(3), labels=torch.tensor([1, 2]))
    assert torch.isfinite(out.loss)
    without = ModuleTeacher(ToyImageTextModel(embed_dim=24))
    with pytest.raises(ValueError, match="pass teacher_dim="):
        ResidualDistiller(MyStudent(clip), without)
