"""Epoch weight averaging and Open-VCLIP-style weight patching with the original CLIP.

Averaging: at the end of each epoch in a configured range, the student's (and projectors')
weights enter a running mean, ``avg_n = avg_{n-1} + (w_n - avg_{n-1}) / n``, kept in float32 on
the CPU. The paper averages the checkpoints of epochs 2..22 of its cross-dataset run.

Patching (Open-VCLIP, Weng et al. 2023, and "Patching open-vocabulary models", Ilharco et al.
2022): ``patched = (1 - ratio) * trained + ratio * original`` for every weight the student shares
with the CLIP it started from, which trades some accuracy on the training classes for more of
CLIP's zero-shot ability.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import torch

State = dict[str, torch.Tensor]


def _floating(tensor: torch.Tensor) -> bool:
    return torch.is_floating_point(tensor)


class EpochAverager:
    """Running mean of state dicts over the epochs ``start_epoch..end_epoch`` (1-based, inclusive).

    Non-floating entries (integer buffers) are taken from the latest state instead of averaged.

    Args:
        start_epoch: First epoch whose end-of-epoch weights are averaged.
        end_epoch: Last one; ``None`` for no limit.
    """

    def __init__(self, start_epoch: int = 1, end_epoch: Optional[int] = None):
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self.average: Optional[State] = None
        self.count = 0

    def wants(self, epoch: int) -> bool:
        """Whether the weights at the end of ``epoch`` enter the mean."""
        return epoch >= self.start_epoch and (self.end_epoch is None or epoch <= self.end_epoch)

    @torch.no_grad()
    def update(self, state: Mapping[str, torch.Tensor]) -> None:
        """Add one state dict to the mean."""
        self.count += 1
        if self.average is None:
            self.average = {k: _to_cpu_float(v) for k, v in state.items()}
            return
        for key, value in state.items():
            if _floating(value):
                mean = self.average[key]
                mean.add_(value.detach().to("cpu", torch.float32) - mean, alpha=1.0 / self.count)
            else:
                self.average[key] = value.detach().to("cpu", copy=True)

    def averaged_like(self, reference: Mapping[str, torch.Tensor]) -> State:
        """The mean, cast to the dtypes of ``reference`` (the model's own state dict)."""
        if self.average is None:
            raise RuntimeError("no epoch has been averaged yet")
        return {k: v.to(reference[k].dtype) if k in reference else v for k, v in self.average.items()}

    def state_dict(self) -> dict:
        return {"count": self.count, "start_epoch": self.start_epoch, "end_epoch": self.end_epoch}

    def load_state_dict(self, state: Mapping, average: Optional[Mapping[str, torch.Tensor]]) -> None:
        self.count = int(state["count"])
        self.average = None if average is None else {k: v.to("cpu", copy=True) for k, v in average.items()}


def _to_cpu_float(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.detach()
    return tensor.to("cpu", torch.float32, copy=True) if _floating(tensor) else tensor.to("cpu", copy=True)


@torch.no_grad()
def patch_weights(
    trained: Mapping[str, torch.Tensor],
    original: Mapping[str, torch.Tensor],
    ratio: float,
    key_map: Callable[[str], Optional[str]] = lambda key: key,
) -> tuple[State, list[str]]:
    """Interpolate trained weights with the original CLIP's.

    ``patched[k] = (1 - ratio) * trained[k] + ratio * original[c]`` where ``k = key_map(c)``, for
    every floating CLIP weight ``c`` whose key and shape the trained state shares; everything else
    is kept as trained.

    Args:
        trained: The trained state dict (student keys).
        original: The original CLIP's state dict (CLIP keys).
        ratio: Weight of the original, in [0, 1].
        key_map: CLIP key -> trained key (``student.clip_state_dict_key``, prefixed as needed);
            ``None`` for a CLIP weight the student does not hold.

    Returns:
        The patched state dict and the sorted list of trained keys that were patched.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    patched = {k: v.detach().clone() for k, v in trained.items()}
    touched = []
    for clip_key, value in original.items():
        key = key_map(clip_key)
        if key is None or key not in patched or not _floating(value):
            continue
        mine = patched[key]
        if mine.shape != value.shape:
            continue
        mixed = torch.lerp(mine.float(), value.to(mine.device, torch.float32), ratio)
        patched[key] = mixed.to(mine.dtype)
        touched.append(key)
    if not touched:
        raise ValueError("patching found no weight shared with the original CLIP; check the key mapping")
    return patched, sorted(touched)


__all__ = ["EpochAverager", "patch_weights"]
