"""AdamW parameter groups, the warm-up + cosine schedule, gradient clipping."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from froster.training.configs import OptimConfig, ScheduleConfig
from froster.training.optim import WarmupCosineSchedule, build_optimizer, clip_grad_norm, lr_factor, param_groups


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.logit_scale = nn.Parameter(torch.tensor(4.6))
        self.frozen = nn.Parameter(torch.zeros(4, 4), requires_grad=False)


def test_no_decay_on_1d_parameters_and_logit_scale():
    decay, no_decay = param_groups(_Model(), weight_decay=0.01)
    assert decay["param_names"] == ["linear.weight"] and decay["weight_decay"] == 0.01
    assert sorted(no_decay["param_names"]) == ["linear.bias", "logit_scale", "norm.bias", "norm.weight"]
    assert no_decay["weight_decay"] == 0.0
    everything, _ = param_groups(_Model(), weight_decay=0.01, decay_1d=True)
    assert "logit_scale" in everything["param_names"] and "frozen" not in everything["param_names"]


def test_schedule_warms_up_then_follows_the_cosine_per_step():
    total, warmup = 100, 20
    assert lr_factor(0, total, warmup, 0.01) == pytest.approx(0.01)
    assert lr_factor(10, total, warmup, 0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(20, total, warmup, 0.01) == pytest.approx(1.0)
    assert lr_factor(60, total, warmup, 0.01) == pytest.approx(0.5)
    assert lr_factor(100, total, warmup, 0.01, final_factor=0.1) == pytest.approx(0.1)
    step = 47
    expected = 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
    assert lr_factor(step, total, warmup) == pytest.approx(expected)

    model = _Model()
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
    schedule = WarmupCosineSchedule.from_config(optimizer, ScheduleConfig(epochs=5, warmup_epochs=1), steps_per_epoch=20)
    seen = []
    for _ in range(100):
        seen.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert seen[0] == pytest.approx(1e-5) and max(seen) == pytest.approx(1e-3)
    assert seen.index(max(seen)) == 20 and seen[-1] < 1e-5
    restored = WarmupCosineSchedule.from_config(optimizer, ScheduleConfig(epochs=5, warmup_epochs=1), steps_per_epoch=20)
    restored.load_state_dict({"step_count": 47})
    assert restored.get_last_lr()[0] == pytest.approx(seen[47])


def test_gradient_norm_is_clipped():
    model = _Model()
    (model.linear(torch.randn(8, 4)) * 100).sum().backward()
    before = clip_grad_norm(model.parameters(), 1.0)
    after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
    assert before > 1.0 and after == pytest.approx(1.0, rel=1e-4)
    assert clip_grad_norm(model.parameters(), None) is None
