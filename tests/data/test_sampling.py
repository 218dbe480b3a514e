"""Frame sampling: properties over arbitrary video lengths, and the paper's exact placements."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from froster.data.sampling import FrameSampler, dense_indices, uniform_indices

lengths = st.integers(1, 400)
frames = st.integers(1, 16)
strides = st.integers(1, 20)
clips = st.integers(1, 4)
seeds = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=150, deadline=None)


def _in_range_and_monotone(indices, n, v, t):
    assert indices.shape == (v, t) and indices.dtype == torch.int64
    assert indices.min() >= 0 and indices.max() < n
    assert (indices.diff(dim=1) >= 0).all()


@FAST
@given(n=lengths, t=frames, s=strides, v=clips, train=st.booleans(), seed=seeds)
def test_dense_indices_in_range_shape_and_non_decreasing(n, t, s, v, train, seed):
    generator = torch.Generator().manual_seed(seed)
    indices = dense_indices(n, t, s, train=train, num_clips=v, generator=generator)
    _in_range_and_monotone(indices, n, v, t)
    if n >= (t - 1) * s + 1:  # the clip fits: exact stride, nothing clamped
        assert (indices.diff(dim=1) == s).all()
    else:  # too short: clamping repeats the last frame and the clip starts at 0
        assert (indices[:, 0] == 0).all() and (indices[:, -1] == n - 1).all()


@FAST
@given(n=lengths, t=frames, v=clips, train=st.booleans(), seed=seeds)
def test_uniform_indices_one_per_segment(n, t, v, train, seed):
    generator = torch.Generator().manual_seed(seed)
    indices = uniform_indices(n, t, train=train, num_clips=v, generator=generator)
    _in_range_and_monotone(indices, n, v, t)
    bounds = torch.arange(t + 1) * n // t
    if n >= t:  # every sample lies in its own segment, so no frame repeats
        assert (indices >= bounds[:-1]).all() and (indices < bounds[1:]).all()
        assert (indices.diff(dim=1) > 0).all()


@FAST
@given(n=lengths, t=frames, s=strides, target=st.sampled_from([24.0, 30.0]), fps=st.sampled_from([12.5, 25.0, 30.0, 60.0]))
def test_dense_stride_follows_target_fps(n, t, s, target, fps):
    indices = dense_indices(n, t, s, train=False, fps=fps, target_fps=target)
    _in_range_and_monotone(indices, n, 1, t)
    step = s * fps / target
    if n - 1 >= (t - 1) * step:
        start = float(indices[0, 0])
        expected = torch.floor(start + torch.arange(t, dtype=torch.float64) * step).long()
        assert torch.equal(indices[0], expected)


def test_dense_test_clips_span_the_video_evenly():
    # The paper's 8 x 16 on 300 frames: clip span 113, starts 0..187.
    indices = dense_indices(300, 8, 16, train=False, num_clips=3)
    assert indices[:, 0].tolist() == [0, 93, 187]
    assert indices[2, -1].item() == 187 + 7 * 16
    assert dense_indices(300, 8, 16, train=False)[0, 0].item() == 93  # one clip: the middle


def test_dense_training_starts_cover_all_fitting_positions():
    generator = torch.Generator().manual_seed(0)
    starts = {dense_indices(12, 3, 4, train=True, generator=generator)[0, 0].item() for _ in range(300)}
    assert starts == {0, 1, 2, 3}  # span 8, last fitting start 3


def test_uniform_test_view_is_the_segment_centre():
    assert uniform_indices(80, 8, train=False).tolist() == [[5, 15, 25, 35, 45, 55, 65, 75]]
    assert uniform_indices(3, 6, train=False).tolist() == [[0, 0, 1, 1, 2, 2]]  # short video repeats


def test_sampler_dataclass_dispatches_and_validates():
    sampler = FrameSampler("uniform", num_frames=4, num_test_clips=2)
    assert sampler(40, train=True).shape == (1, 4) and sampler(40, train=False).shape == (2, 4)
    assert torch.equal(FrameSampler("dense", 4, 2)(40, train=False), dense_indices(40, 4, 2, train=False, num_clips=3))
    with pytest.raises(ValueError, match="sampling mode"):
        FrameSampler("random")
    with pytest.raises(ValueError):
        dense_indices(0, 8, 16, train=True)
