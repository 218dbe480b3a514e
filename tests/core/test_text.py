"""The released prompt protocol: templates, prompt sets per training step, the ensemble, on both sides."""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from froster import ResidualDistiller
from froster.text import (
    ALL_TEMPLATES,
    BARE_TEMPLATE,
    VIDEO_TEMPLATES,
    ClassText,
    class_texts_from,
    ensemble_features,
    evaluation_prompt_sets,
    training_prompt_sets,
)
from froster.testing import synthetic_video

CLASSES = class_texts_from(["abseiling", "surfing"], ["A person descends a rock face on a rope.", "A person rides a wave."])


def test_twenty_eight_templates_plus_the_bare_entry():
    assert len(VIDEO_TEMPLATES) == 28 and len(set(VIDEO_TEMPLATES)) == 28
    assert ALL_TEMPLATES == VIDEO_TEMPLATES + (BARE_TEMPLATE,)
    assert all(t.count("{}") == 1 for t in ALL_TEMPLATES)
    assert VIDEO_TEMPLATES[0] == "a photo of {}." and VIDEO_TEMPLATES[-1] == "a demonstration of a person practicing {}."


def test_prompts_are_the_template_with_the_name_then_the_entry():
    abseiling = CLASSES[0]
    assert abseiling.entry == "abseiling: A person descends a rock face on a rope."
    assert abseiling.prompt("a video of a person {}.") == "a video of a person abseiling. abseiling: A person descends a rock face on a rope."
    assert abseiling.prompt(BARE_TEMPLATE) == abseiling.entry
    plain = ClassText("surfing")  # without a description the entry is the name
    assert plain.prompt("a video of {}.") == "a video of surfing." and plain.prompt(BARE_TEMPLATE) == "surfing"
    with pytest.raises(ValueError, match="2 descriptions for 3 class names"):
        class_texts_from(["a", "b", "c"], ["x", "y"])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_released_protocol_draws_one_of_28_templates_and_adds_the_bare_entry(seed):
    sets = training_prompt_sets(CLASSES, random.Random(seed), "released")
    assert len(sets) == 2 and sets[1] == [c.entry for c in CLASSES]
    template = next(t for t in VIDEO_TEMPLATES if sets[0] == [c.prompt(t) for c in CLASSES])  # one template, all classes
    assert template != BARE_TEMPLATE
    assert training_prompt_sets(CLASSES, random.Random(seed), "released") == sets  # the seed decides
    single = training_prompt_sets(CLASSES, random.Random(seed), "single_template")
    assert len(single) == 1 and any(single[0] == [c.prompt(t) for c in CLASSES] for t in ALL_TEMPLATES)


def test_every_template_is_drawn_and_the_bare_entry_never_by_the_released_protocol():
    rng = random.Random(0)
    drawn = {tuple(training_prompt_sets(CLASSES, rng)[0]) for _ in range(2000)}
    assert len(drawn) == 28
    assert tuple(c.entry for c in CLASSES) not in drawn
    with pytest.raises(ValueError, match="protocol must be one of"):
        training_prompt_sets(CLASSES, rng, "all")


def test_evaluation_uses_all_29_sets():
    sets = evaluation_prompt_sets(CLASSES)
    assert len(sets) == 29 and sets[-1] == [c.entry for c in CLASSES]
    assert evaluation_prompt_sets(CLASSES, ensemble=False) == sets[:1]


@settings(max_examples=30, deadline=None)
@given(j=st.integers(1, 5), k=st.integers(1, 6), d=st.integers(2, 16), seed=st.integers(0, 1000))
def test_ensemble_is_the_normalised_mean_of_normalised_sets_with_the_mean_length(j, k, d, seed):
    generator = torch.Generator().manual_seed(seed)
    features = [torch.randn(k, d, generator=generator, dtype=torch.float64) * (i + 1) for i in range(j)]
    got = ensemble_features(features)
    if j == 1:
        assert got is features[0]
        return
    # Written out, row by row, in fp64.
    for row in range(k):
        units = [f[row] / f[row].norm() for f in features]
        mean = sum(units) / j
        direction = mean / mean.norm()
        length = sum(f[row].norm() for f in features) / j
        torch.testing.assert_close(got[row], direction * length)


def test_distiller_ensembles_both_sides_and_caches_the_teachers_sets(student, teacher):
    distiller = ResidualDistiller(student, teacher, alpha=0.1, beta=2.0, kind="cosine")
    sets = training_prompt_sets(CLASSES, random.Random(3))
    video, labels = synthetic_video(2, 4), torch.tensor([0, 1])
    out = distiller(video, sets, labels=labels)

    with torch.no_grad():
        tokens = [teacher.tokenizer(s) for s in sets]
        student_text = [student.encode_text(t).double() for t in tokens]
        teacher_text = [teacher.encode_text(t).double() for t in tokens]

        def ensemble(fs):  # normalise each, average, normalise: the released code's ensemble
            return F.normalize(sum(F.normalize(f, dim=-1) for f in fs) / len(fs), dim=-1)

        s, t = ensemble(student_text), ensemble(teacher_text)
        w1, w2 = distiller.text_projector.fc1.weight.double(), distiller.text_projector.fc2.weight.double()
        projected = s + 0.1 * F.gelu(s @ w1.T) @ w2.T
        expected_text = (1 - F.cosine_similarity(projected, t, dim=-1)).mean()
        frames = F.normalize(student.encode_video(video).double().mean(dim=1), dim=-1)
        logits = student.logit_scale.exp().double() * frames @ s.T
        expected_ce = F.cross_entropy(logits, labels)
    torch.testing.assert_close(out.losses["text_distill_loss"].double(), expected_text, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.losses["ce_loss"].double(), expected_ce, rtol=1e-5, atol=1e-6)

    misses = distiller.teacher_text_cache.misses
    distiller(video, sets, labels=labels)
    assert distiller.teacher_text_cache.misses == misses  # each set encoded by the teacher once
    with pytest.raises(ValueError, match=r"sets hold \[2, 1\] prompts"):
        distiller(video, [sets[0], sets[1][:1]], labels=labels)
