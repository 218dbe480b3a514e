"""Input checks with errors that name the argument, what was expected and what came."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import torch

Prompts = Union[torch.Tensor, Sequence[str]]


def check_video(video: object, name: str = "video", num_frames: Optional[int] = None, channels: int = 3) -> None:
    """``video`` must be a floating (B, C, T, H, W) tensor with ``channels`` channels."""
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, T, H, W), got {type(video).__name__}")
    if video.dim() != 5:
        raise ValueError(f"{name} must have shape (B, C, T, H, W) (5 dims), got {video.dim()} dims {tuple(video.shape)}")
    if not video.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (normalised pixels), got dtype {video.dtype}")
    if video.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels in dim 1 of (B, C, T, H, W), got {video.shape[1]} (shape {tuple(video.shape)})")
    if video.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(video.shape)})")
    if num_frames is not None and video.shape[2] != num_frames:
        raise ValueError(
            f"{name} has {video.shape[2]} frames in dim 2 of (B, C, T, H, W) (shape {tuple(video.shape)}), "
            f"but the student was built for num_frames={num_frames}"
        )


def check_prompts(prompts: object, name: str = "prompts") -> int:
    """``prompts`` must be a non-empty list of strings or a (K, L) token tensor; returns K."""
    if isinstance(prompts, torch.Tensor):
        if prompts.dim() != 2 or prompts.shape[0] == 0:
            raise ValueError(f"{name} as tokens must have shape (K, L) with K >= 1, got {tuple(prompts.shape)}")
        if prompts.is_floating_point():
            raise TypeError(f"{name} as tokens must be an integer tensor, got dtype {prompts.dtype}")
        return int(prompts.shape[0])
    if isinstance(prompts, str):
        raise TypeError(f"{name} must be a list of strings (one per class), got a single str {prompts!r}")
    if not isinstance(prompts, Sequence):
        raise TypeError(f"{name} must be a list of strings or a (K, L) token tensor, got {type(prompts).__name__}")
    if len(prompts) == 0:
        raise ValueError(f"{name} is empty: give at least one class prompt")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise TypeError(f"{name} must contain only strings; item {bad[0]} is {type(prompts[bad[0]]).__name__}")
    return len(prompts)


def check_labels(labels: object, batch_size: int, num_classes: int, name: str = "labels") -> None:
    """``labels`` must be an integer (B,) tensor with values in [0, K)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must hold integer class indices (torch.long), got dtype {labels.dtype}")
    if tuple(labels.shape) != (batch_size,):
        raise ValueError(f"{name} must have shape ({batch_size},) to match the video batch, got {tuple(labels.shape)}")
    low, high = torch.stack([labels.min(), labels.max()]).tolist()  # one host sync, not two
    if low < 0 or high >= num_classes:
        raise ValueError(f"{name} must lie in [0, {num_classes}) for {num_classes} prompts, got values in [{low}, {high}]")


def check_finite(features: Mapping[str, torch.Tensor]) -> None:
    """Raise a ``FloatingPointError`` naming every tensor of ``features`` with NaN or inf.

    All checks share one host synchronisation.
    """
    names = list(features)
    flags = torch.stack([torch.isfinite(features[n]).all() for n in names]).tolist()
    bad = [n for n, ok in zip(names, flags) if not ok]
    if bad:
        raise FloatingPointError(f"non-finite values (NaN or inf) in {', '.join(bad)}")
