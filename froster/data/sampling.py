"""Which frames of a video make a clip: dense (T frames, a fixed stride apart) and segment sampling.

Both samplers are pure functions of the video's frame count that return a ``(V, T)`` index tensor:
V clips (temporal views) of T frame indices each. Training draws one random clip (V = 1); testing
takes V evenly placed clips, deterministically. Indices always lie in ``[0, num_video_frames)`` and
never decrease along T; videos too short for a clip repeat frames instead of failing.

* Dense (PySlowFast's, the paper's ``8 x 16``): frames ``start, start + s, ..., start + (T-1)s``.
  Training picks ``start`` uniformly among the starts whose clip fits in the video; test clip ``j``
  of ``V`` starts at ``j / (V - 1)`` of the way between the first and the last fitting start (the
  middle one when V = 1), rounded down to a frame. In a video shorter than the clip, indices past
  the end are clamped to the last frame. With ``fps`` and ``target_fps`` the stride counts frames
  at ``target_fps`` (PySlowFast sets ``target_fps=30``), so a 25 fps video is sampled over the
  same duration.
* Uniform / segments (TSN's): the video is cut into T equal segments (integer boundaries);
  training takes a random frame of each segment, test view ``j`` of ``V`` the frame at fraction
  ``(j + 0.5) / V`` of each segment (the centre when V = 1). Indices strictly increase whenever the
  video has at least T frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

SAMPLING_MODES = ("dense", "uniform")


def _check(num_video_frames: int, num_frames: int, num_clips: int) -> None:
    if num_video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_video_frames}")
    if num_frames < 1 or num_clips < 1:
        raise ValueError(f"num_frames and num_clips must be positive, got {num_frames}, {num_clips}")


def dense_indices(
    num_video_frames: int,
    num_frames: int,
    stride: int,
    *,
    train: bool,
    num_clips: int = 1,
    fps: Optional[float] = None,
    target_fps: Optional[float] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Frame indices of ``num_clips`` dense clips of ``num_frames`` frames, ``stride`` apart.

    Args:
        num_video_frames: Frames in the video.
        num_frames: T, frames per clip.
        stride: Distance between sampled frames, in frames at ``target_fps`` when both rates are
            given, else in the video's frames.
        train: Random clip starts when True, evenly spaced ones when False.
        num_clips: V, clips to return.
        fps: The video's frame rate.
        target_fps: The rate ``stride`` is counted at.
        generator: Random source for training; torch's global one when None (which DataLoader
            workers seed differently).

    Returns:
        A ``(V, T)`` int64 tensor.
    """
    _check(num_video_frames, num_frames, num_clips)
    if stride < 1:
        raise ValueError(f"stride must be positive, got {stride}")
    step = float(stride)
    if fps is not None and target_fps is not None and fps > 0 and target_fps > 0:
        step = stride * fps / target_fps
    span = (num_frames - 1) * step  # offset of the clip's last frame from its first
    last_start = max(int(num_video_frames - 1 - span), 0)  # the last start whose clip fits
    if train:
        starts = torch.randint(0, last_start + 1, (num_clips,), generator=generator).double()
    elif num_clips == 1:
        starts = torch.tensor([last_start // 2], dtype=torch.float64)
    else:
        starts = torch.floor(torch.linspace(0.0, float(last_start), num_clips, dtype=torch.float64))
    offsets = torch.arange(num_frames, dtype=torch.float64) * step  # (T,)
    positions = torch.floor(starts[:, None] + offsets[None, :])  # (V, T)
    return positions.long().clamp_(0, num_video_frames - 1)


def uniform_indices(
    num_video_frames: int,
    num_frames: int,
    *,
    train: bool,
    num_clips: int = 1,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Frame indices from T equal segments: a random frame of each in training, else fixed ones.

    Segment ``i`` covers frames ``[b_i, b_{i+1})`` with ``b_i = floor(i * N / T)``.

    Args:
        num_video_frames: N, frames in the video.
        num_frames: T, frames per clip (= segments).
        train: A random frame of each segment when True; the frame at fraction
            ``(j + 0.5) / num_clips`` of each segment for view ``j`` when False.
        num_clips: V, views to return.
        generator: Random source for training.

    Returns:
        A ``(V, T)`` int64 tensor.
    """
    _check(num_video_frames, num_frames, num_clips)
    bounds = torch.arange(num_frames + 1, dtype=torch.int64) * num_video_frames // num_frames  # (T+1,)
    begin, length = bounds[:-1], (bounds[1:] - bounds[:-1]).double()  # (T,), (T,)
    if train:
        fraction = torch.rand(num_clips, num_frames, generator=generator, dtype=torch.float64)
    else:
        fraction = ((torch.arange(num_clips, dtype=torch.float64) + 0.5) / num_clips)[:, None]
        fraction = fraction.expand(num_clips, num_frames)
    # fraction < 1, so a segment of length L >= 1 yields an offset in [0, L - 1]; empty segments
    # (videos shorter than T) yield their start, which repeats a neighbouring frame.
    positions = begin[None, :] + torch.floor(fraction * length[None, :]).long()  # (V, T)
    return positions.clamp_(0, num_video_frames - 1)


@dataclass
class FrameSampler:
    """How a dataset turns a video's frame count into clips: a mode and its parameters.

    Attributes:
        mode: ``"dense"`` or ``"uniform"``.
        num_frames: T, frames per clip.
        stride: Frames between samples in dense mode (ignored by uniform sampling).
        num_test_clips: V, temporal views at test time (the paper: 3).
        target_fps: Dense mode only: the rate ``stride`` is counted at (None: the video's own).
    """

    mode: str = "dense"
    num_frames: int = 8
    stride: int = 16
    num_test_clips: int = 3
    target_fps: Optional[float] = None

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {self.mode!r}")

    def num_views(self, train: bool) -> int:
        """V: one clip in training, ``num_test_clips`` at test time."""
        return 1 if train else self.num_test_clips

    def __call__(
        self,
        num_video_frames: int,
        *,
        train: bool,
        fps: Optional[float] = None,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """``(V, T)`` frame indices for a video of ``num_video_frames`` frames."""
        views = self.num_views(train)
        if self.mode == "dense":
            return dense_indices(
                num_video_frames, self.num_frames, self.stride, train=train, num_clips=views,
                fps=fps, target_fps=self.target_fps, generator=generator,
            )
        return uniform_indices(num_video_frames, self.num_frames, train=train, num_clips=views, generator=generator)
