"""Prompt templates, training-time sampling and the test-time text ensemble."""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from froster.text import (
    ALL_TEMPLATES,
    BARE_TEMPLATE,
    VIDEO_TEMPLATES,
    all_prompts,
    ensemble_text_features,
    sample_prompts,
    sample_template_index,
)

NAMES = ["abseiling", "surfing", "knitting"]


def test_twenty_eight_templates_plus_the_bare_text():
    assert len(VIDEO_TEMPLATES) == 28 and len(set(VIDEO_TEMPLATES)) == 28
    assert ALL_TEMPLATES == VIDEO_TEMPLATES + (BARE_TEMPLATE,)
    assert all(t.count("{}") == 1 for t in ALL_TEMPLATES)
    assert "a video of a person {}." in VIDEO_TEMPLATES and "a photo of a person using {}." in VIDEO_TEMPLATES
    assert VIDEO_TEMPLATES[0] == "a photo of {}." and VIDEO_TEMPLATES[-1] == "a demonstration of a person practicing {}."


def test_all_prompts_is_templates_by_classes():
    rows = all_prompts(NAMES)
    assert len(rows) == 29 and all(len(row) == 3 for row in rows)
    assert rows[8] == ["a video of a person abseiling.", "a video of a person surfing.", "a video of a person knitting."]
    assert rows[-1] == NAMES


def test_sample_prompts_uses_one_template_for_all_classes_and_is_seedable():
    rows = all_prompts(NAMES)
    seen = set()
    rng = random.Random(0)
    for _ in range(400):
        prompts = sample_prompts(NAMES, rng)
        assert prompts in rows
        seen.add(rows.index(prompts))
    assert seen == set(range(29))
    assert sample_prompts(NAMES, random.Random(5)) == rows[sample_template_index(random.Random(5))]


def test_ensemble_averages_normalised_features_and_renormalises():
    torch.manual_seed(0)
    table = {}

    def encode(prompts):  # a fixed random feature per prompt, of varying norm
        return torch.stack([table.setdefault(p, torch.randn(8) * (1 + len(table))) for p in prompts])

    rows = all_prompts(NAMES)
    features = ensemble_text_features(encode, rows)
    expected = torch.stack([F.normalize(encode(row), dim=-1) for row in rows]).mean(0)
    assert features.shape == (3, 8)
    torch.testing.assert_close(features, F.normalize(expected, dim=-1))
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(3))
    # One prompt set: the normalised features themselves.
    torch.testing.assert_close(ensemble_text_features(encode, rows[:1]), F.normalize(encode(rows[0]), dim=-1))
    with pytest.raises(ValueError):
        ensemble_text_features(encode, [NAMES, NAMES[:2]])
