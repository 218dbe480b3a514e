"""Shared fixtures: tiny open_clip models built in code, never downloaded."""
from __future__ import annotations

import os

import pytest
import torch

# Without a GPU the Triton kernels run in Triton's CPU interpreter. Triton reads the switch when it
# is first imported, and any test module (or torch itself) may import it first, so it is set here,
# in the root conftest that every test process loads before collecting anything.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

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
