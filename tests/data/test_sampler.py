"""The evaluation sampler partitions the dataset across ranks with no padding."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from froster.data.sampler import EvalDistributedSampler


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), world=st.integers(1, 16))
def test_ranks_partition_the_dataset_exactly(n, world):
    dataset = range(n)
    per_rank = [list(EvalDistributedSampler(dataset, world, rank)) for rank in range(world)]
    union = sorted(i for indices in per_rank for i in indices)
    assert union == list(range(n))  # every video once, no padding duplicates
    lengths = [len(EvalDistributedSampler(dataset, world, rank)) for rank in range(world)]
    assert lengths == [len(indices) for indices in per_rank]
    assert max(lengths) - min(lengths) <= 1


def test_defaults_without_a_process_group_and_bad_ranks():
    sampler = EvalDistributedSampler(range(5))
    assert list(sampler) == [0, 1, 2, 3, 4]
    sampler.set_epoch(3)
    with pytest.raises(ValueError):
        EvalDistributedSampler(range(5), num_replicas=2, rank=2)
