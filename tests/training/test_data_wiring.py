"""How the run's configs reach froster.data: few-shot subsets, the resumable sampler, paths."""
from __future__ import annotations

import pytest

from froster.recipes import load_recipe
from froster.training.data import ResumableSampler, few_shot_indices, train_dataset


def test_few_shot_subset_is_per_class_and_seeded():
    labels = [0] * 30 + [1] * 5 + [2] * 20
    chosen = few_shot_indices(labels, shots=16, seed=3)
    counts = {c: sum(labels[i] == c for i in chosen) for c in (0, 1, 2)}
    assert counts == {0: 16, 1: 5, 2: 16} and chosen == sorted(set(chosen))
    assert chosen == few_shot_indices(labels, 16, seed=3) and chosen != few_shot_indices(labels, 16, seed=4)


def test_resumable_sampler_continues_the_same_permutation():
    data = list(range(20))
    full = ResumableSampler(data, num_replicas=2, rank=1, shuffle=True, seed=7)
    full.set_epoch(3)
    order = list(full)
    skipping = ResumableSampler(data, num_replicas=2, rank=1, shuffle=True, seed=7)
    skipping.set_epoch(3)
    skipping.start_at(4)
    assert list(skipping) == order[4:]
    assert list(skipping) == order, "the skip applies to one iteration only"


def test_missing_root_is_named_in_the_error():
    config = load_recipe("k400_cross_dataset")
    with pytest.raises(FileNotFoundError, match="set data.root="):
        train_dataset(config.data, seed=0)
