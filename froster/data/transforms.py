"""Spatial transforms of decoded clips: training augmentation and the fixed test view.

Both map uint8 frames ``(*, T, 3, H, W)`` -- what :func:`froster.data.decoding.read_frames`
returns -- to CLIP-normalised float32 ``(*, 3, T, H', W')``, the library's clip layout; ``*`` is
empty for one clip or ``V`` for the test views. Every frame of every clip in one call gets the same
random parameters, so a clip's frames stay aligned.

* Training (the paper's recipe, PySlowFast's ``random_short_side_scale_jitter`` + ``random_crop``
  + ``horizontal_flip``): resize the short side to a random size in ``short_side`` (224-256
  inclusive), crop ``crop_size`` at a random place, flip horizontally with probability 0.5.
* Test: resize the short side to ``size``, crop the centre ``crop_size`` (the paper's 3 temporal
  clips x 1 centre crop; the temporal clips come from the frame sampler).

Resizing runs on uint8 frames, before the float conversion, to keep the work and the memory small.
torchvision's ``transforms.v2`` does the work; pytorchvideo's transforms are not used because
pytorchvideo 0.1.5 imports a torchvision module that no longer exists.
"""
from __future__ import annotations

from typing import Sequence

import torch

# CLIP's pixel statistics (RGB, for values in [0, 1]).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _as_clip_layout(frames: torch.Tensor) -> torch.Tensor:
    """(*, T, C, H, W) -> (*, C, T, H, W), as a plain tensor."""
    return frames.as_subclass(torch.Tensor).transpose(-4, -3).contiguous()


def _check_frames(frames: torch.Tensor) -> None:
    if frames.dim() < 4 or frames.shape[-3] != 3:
        raise ValueError(f"expected frames of shape (*, T, 3, H, W), got {tuple(frames.shape)}")


def _normalisation(mean: Sequence[float], std: Sequence[float]) -> list:
    from torchvision.transforms import v2

    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]


class TrainTransform:
    """Short-side scale jitter, random crop, horizontal flip, CLIP normalisation.

    Args:
        crop_size: Side of the square crop (224 in the paper; the tests use 32).
        short_side: Inclusive ``(min, max)`` range the short side is resized to.
        hflip: Whether to flip horizontally with probability 0.5.
        mean: Per-channel mean for values in [0, 1].
        std: Per-channel standard deviation.
    """

    def __init__(
        self,
        crop_size: int = 224,
        short_side: tuple[int, int] = (224, 256),
        hflip: bool = True,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
    ):
        from torchvision.transforms import InterpolationMode, v2

        low, high = short_side
        if not 0 < low <= high:
            raise ValueError(f"short_side must be an increasing (min, max) pair, got {short_side}")
        self.crop_size, self.short_side, self.hflip = crop_size, (low, high), hflip
        steps = [
            # RandomResize draws the short side from [min_size, max_size).
            v2.RandomResize(low, high + 1, interpolation=InterpolationMode.BILINEAR, antialias=True),
            # Padding only matters when short_side dips below crop_size.
            v2.RandomCrop(crop_size, pad_if_needed=True),
        ]
        if hflip:
            steps.append(v2.RandomHorizontalFlip(p=0.5))
        self._pipeline = v2.Compose(steps + _normalisation(mean, std))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(*, T, 3, H, W)`` -> normalised float32 ``(*, 3, T, crop, crop)``."""
        from torchvision import tv_tensors

        _check_frames(frames)
        lead = frames.shape[:-3]  # (*, T)
        video = tv_tensors.Video(frames.reshape(-1, *frames.shape[-3:]))  # (N, C, H, W), one draw
        out = self._pipeline(video)
        return _as_clip_layout(out.reshape(*lead, *out.shape[-3:]))

    def __repr__(self) -> str:
        return f"TrainTransform(crop_size={self.crop_size}, short_side={self.short_side}, hflip={self.hflip})"


class TestTransform:
    """Resize the short side, crop the centre, CLIP normalisation.

    Args:
        size: Short side after resizing (224 in the paper).
        crop_size: Side of the centre crop; ``size`` when None.
        mean: Per-channel mean for values in [0, 1].
        std: Per-channel standard deviation.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        size: int = 224,
        crop_size: int | None = None,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
    ):
        from torchvision.transforms import InterpolationMode, v2

        self.size, self.crop_size = size, crop_size if crop_size is not None else size
        steps = [
            v2.Resize(size, interpolation=InterpolationMode.BILINEAR, antialias=True),
            v2.CenterCrop(self.crop_size),
        ]
        self._pipeline = v2.Compose(steps + _normalisation(mean, std))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(*, T, 3, H, W)`` -> normalised float32 ``(*, 3, T, crop, crop)``."""
        from torchvision import tv_tensors

        _check_frames(frames)
        lead = frames.shape[:-3]
        video = tv_tensors.Video(frames.reshape(-1, *frames.shape[-3:]))  # (N, C, H, W)
        out = self._pipeline(video)
        return _as_clip_layout(out.reshape(*lead, *out.shape[-3:]))

    def __repr__(self) -> str:
        return f"TestTransform(size={self.size}, crop_size={self.crop_size})"
