"""Epoch weight averaging and weight patching with the original CLIP."""
from __future__ import annotations

import pytest
import torch

from froster.training.averaging import EpochAverager, patch_weights


def test_running_mean_over_the_configured_epochs():
    averager = EpochAverager(start_epoch=2, end_epoch=3)
    assert [averager.wants(e) for e in (1, 2, 3, 4)] == [False, True, True, False]
    states = [{"w": torch.tensor([1.0, 2.0], dtype=torch.bfloat16) * k, "n": torch.tensor(k)} for k in (1, 2, 6)]
    for state in states:
        averager.update(state)
    assert averager.average["w"].dtype == torch.float32
    assert torch.allclose(averager.average["w"], torch.tensor([3.0, 6.0]))
    assert averager.average["n"].item() == 6  # integers: the latest, not a mean
    like = averager.averaged_like(states[0])
    assert like["w"].dtype == torch.bfloat16
    restored = EpochAverager(2, 3)
    restored.load_state_dict(averager.state_dict(), averager.average)
    restored.update({"w": torch.tensor([0.0, 0.0]), "n": torch.tensor(0)})
    assert torch.allclose(restored.average["w"], torch.tensor([2.25, 4.5]))


def test_patching_interpolates_shared_weights_only():
    trained = {"student.a": torch.tensor([2.0, 4.0]), "student.new": torch.ones(3), "video_projector.fc1.weight": torch.ones(2, 2)}
    original = {"a": torch.tensor([0.0, 0.0]), "unrelated": torch.ones(5)}
    key_map = lambda k: "student." + k  # noqa: E731
    patched, touched = patch_weights(trained, original, 0.25, key_map)
    assert touched == ["student.a"]
    assert torch.allclose(patched["student.a"], torch.tensor([1.5, 3.0]))
    assert torch.equal(patched["student.new"], trained["student.new"])
    assert torch.equal(patch_weights(trained, original, 0.0, key_map)[0]["student.a"], trained["student.a"])
    assert torch.equal(patch_weights(trained, original, 1.0, key_map)[0]["student.a"], original["a"])
    with pytest.raises(ValueError):
        patch_weights(trained, original, 1.5, key_map)
