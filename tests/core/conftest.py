"""Fixtures for the core tests: a tiny open_clip teacher and a user-written student."""
from __future__ import annotations

import pytest

from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, tiny_clip_overrides

from .toy_models import ToyVideoStudent


@pytest.fixture
def teacher():
    return OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, **tiny_clip_overrides())


@pytest.fixture
def student(teacher):
    return ToyVideoStudent(embed_dim=teacher.embed_dim, num_frames=4, tokenizer=teacher.tokenizer)
