"""Accuracy metrics, base-to-novel harmonic mean, split summaries and the reports."""
from __future__ import annotations

import json

import pytest
import torch

from froster.evaluation import metrics as M


def test_topk_and_per_class():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.5, 0.2, 0.3], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 2, 2, 2])
    assert M.topk_accuracy(scores, labels, 1) == pytest.approx(50.0)
    assert M.topk_accuracy(scores, labels, 2) == pytest.approx(100.0)
    assert M.topk_accuracy(scores, labels, 5) == pytest.approx(100.0)  # k capped at K
    assert M.per_class_accuracy(scores, labels) == [100.0, None, pytest.approx(100 / 3)]
    metrics = M.classification_metrics(scores, labels, ["a", "b", "c"])
    assert metrics["mean_class_accuracy"] == pytest.approx((100 + 100 / 3) / 2)
    assert metrics["per_class"]["b"] is None and metrics["num_videos"] == 4


def test_base_and_novel_are_classified_among_their_own_classes():
    # Classes 0, 1 are base, 2, 3 novel. Video 0 (base 0) is wrong over all classes (novel 2 wins)
    # but right among the base classes; video 2 (novel 3) is wrong either way.
    scores = torch.tensor([
        [0.3, 0.1, 0.6, 0.0],
        [0.1, 0.8, 0.1, 0.0],
        [0.1, 0.1, 0.5, 0.3],
        [0.0, 0.9, 0.0, 0.1],
    ])
    labels = torch.tensor([0, 1, 3, 3])
    result = M.base_novel_accuracy(scores, labels, base_classes=[0, 1])
    assert result["base"] == pytest.approx(100.0)
    assert result["novel"] == pytest.approx(50.0)
    assert result["hm"] == pytest.approx(2 * 100 * 50 / 150)
    assert M.harmonic_mean(0.0, 0.0) == 0.0


def test_groups_mean_std_and_reports():
    results = {f"k600_{i}": {"top1": t, "top5": 90.0, "mean_class_accuracy": t, "num_videos": 10} for i, t in enumerate((70.0, 72.0, 74.0))}
    results["ucf"] = {"top1": 80.0, "top5": 95.0, "mean_class_accuracy": 80.0, "num_videos": 5, "skipped": 1}
    groups = M.summarize_groups(results, {"k600_0": "k600", "k600_1": "k600", "k600_2": "k600", "ucf": None})
    assert groups["k600"]["top1"]["mean"] == pytest.approx(72.0)
    assert groups["k600"]["top1"]["std"] == pytest.approx((8 / 3) ** 0.5)
    assert groups["k600"]["sets"] == ["k600_0", "k600_1", "k600_2"]
    table = M.markdown_table(results, groups)
    assert "| ucf | 5 | 1 | 80.00 |" in table and "72.00 ± 1.63" in table
    report = json.loads(M.to_json(results, groups, {"view_average": "probs"}))
    assert report["groups"]["k600"]["top5"]["std"] == 0.0 and report["view_average"] == "probs"
    with pytest.raises(ValueError, match="not among the class names"):
        M.class_indices(["surfing"], ["juggling"])
    assert M.class_indices(["Surfing ", "juggling"], ["juggling", "surfing"]) == [1, 0]
