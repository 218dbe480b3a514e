"""Shared fixtures: tiny open_clip models built in code, never downloaded."""
from __future__ import annotations

import pytest
import torch

from froster.clip_loading import create_open_clip
from froster.testing import TINY_CLIP_NAME, tiny_clip_overrides


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_clip():
    model, tokenizer = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    return model, tokenizer
