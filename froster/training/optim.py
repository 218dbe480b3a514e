"""AdamW without decay on 1-D parameters, and the per-step warm-up + cosine learning rate.

The paper's recipe (after Open-VCLIP): AdamW, weight decay 0.01 on matrices and embeddings only
(biases, norm weights, ``logit_scale`` and other 1-D or scalar parameters are not decayed), the
learning rate warmed up linearly for 2 epochs and then decayed along a cosine, updated every step.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch
import torch.nn as nn

from froster.training.configs import OptimConfig, ScheduleConfig


def param_groups(model: nn.Module, weight_decay: float, decay_1d: bool = False) -> list[dict[str, Any]]:
    """Split the trainable parameters of ``model`` into a decayed and a non-decayed group.

    A parameter is not decayed when it has fewer than 2 dimensions (biases, LayerNorm weights,
    ``logit_scale``, class/position tokens of shape (D,)) unless ``decay_1d``.

    Returns:
        Two AdamW parameter groups, each with a ``"param_names"`` list (torch's key) for logs and tests.
    """
    decay: tuple[list[str], list[nn.Parameter]] = ([], [])
    no_decay: tuple[list[str], list[nn.Parameter]] = ([], [])
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        target = decay if (param.ndim >= 2 or decay_1d) else no_decay
        target[0].append(name)
        target[1].append(param)
    return [
        {"params": decay[1], "param_names": decay[0], "weight_decay": weight_decay},
        {"params": no_decay[1], "param_names": no_decay[0], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``model`` (the distiller: student and projectors)."""
    groups = [g for g in param_groups(model, config.weight_decay, config.decay_1d) if g["params"]]
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.betas[0], config.betas[1]), eps=config.eps)


def lr_factor(step: int, total_steps: int, warmup_steps: int, start_factor: float = 0.01, final_factor: float = 0.0) -> float:
    """Learning-rate multiplier of ``step`` (0-based)::

        step < warmup:  start + (1 - start) * step / warmup
        after:          final + (1 - final) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2
    """
    if warmup_steps > 0 and step < warmup_steps:
        return start_factor + (1.0 - start_factor) * step / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Sets the learning rate of every parameter group before each optimiser step.

    Its whole state is the step counter, so checkpoints store one integer.

    Args:
        optimizer: The optimiser; each group's ``initial_lr`` is taken from its ``lr`` at creation.
        total_steps: Steps of the whole run (epochs x steps per epoch).
        warmup_steps: Linear warm-up steps.
        start_factor: Multiplier at step 0.
        final_factor: Multiplier at the last step.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, start_factor: float = 0.01, final_factor: float = 0.0):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.optimizer = optimizer
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)
        self.start_factor, self.final_factor = start_factor, final_factor
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.step_count = 0
        self._apply()

    @classmethod
    def from_config(cls, optimizer: torch.optim.Optimizer, config: ScheduleConfig, steps_per_epoch: int) -> "WarmupCosineSchedule":
        return cls(
            optimizer,
            total_steps=config.epochs * steps_per_epoch,
            warmup_steps=round(config.warmup_epochs * steps_per_epoch),
            start_factor=config.warmup_start_factor,
            final_factor=config.final_factor,
        )

    def factor(self, step: int) -> float:
        return lr_factor(step, self.total_steps, self.warmup_steps, self.start_factor, self.final_factor)

    def _apply(self) -> None:
        factor = self.factor(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def step(self) -> None:
        """Advance to the next step (call after ``optimizer.step()``)."""
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, int]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step_count = int(state["step_count"])
        self._apply()


def clip_grad_norm(parameters: Iterable[nn.Parameter], max_norm: float | None) -> torch.Tensor | None:
    """Clip the global gradient norm to ``max_norm``; returns the norm before clipping (or None)."""
    if max_norm is None:
        return None
    return torch.nn.utils.clip_grad_norm_([p for p in parameters if p.grad is not None], max_norm)


__all__ = ["WarmupCosineSchedule", "build_optimizer", "clip_grad_norm", "lr_factor", "param_groups"]
