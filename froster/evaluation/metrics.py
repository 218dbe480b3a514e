"""Accuracy metrics of open-vocabulary action recognition, and their JSON / markdown reports.

All functions take ``scores`` (N, K) -- probabilities or logits, one row per video after
multi-view fusion -- and ``labels`` (N,). Accuracies are percentages.

* top-1 / top-5 accuracy over videos;
* mean per-class accuracy (each class's top-1 accuracy, averaged over the classes present);
* base-to-novel (ViFi-CLIP / Open-VCLIP protocol): videos of base classes are classified among
  the base classes only, videos of novel classes among the novel classes only, and the harmonic
  mean ``HM = 2 * base * novel / (base + novel)`` summarises the two;
* mean and (population) std over the sets of a group, e.g. the three K600 160-class subsets.
"""
from __future__ import annotations

import json
import math
from typing import Iterable, Mapping, Optional, Sequence

import torch


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Percentage of rows whose label is among the ``k`` highest scores (``k`` capped at K)."""
    if scores.shape[0] == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices  # (N, k)
    return 100.0 * (top == labels[:, None]).any(dim=1).float().mean().item()


def per_class_accuracy(scores: torch.Tensor, labels: torch.Tensor, num_classes: Optional[int] = None) -> list[Optional[float]]:
    """Top-1 accuracy of each class (``None`` for classes without videos)."""
    num_classes = num_classes or scores.shape[1]
    correct = scores.argmax(dim=1) == labels
    result: list[Optional[float]] = []
    for c in range(num_classes):
        mask = labels == c
        result.append(100.0 * correct[mask].float().mean().item() if mask.any() else None)
    return result


def harmonic_mean(base: float, novel: float) -> float:
    """``2 * base * novel / (base + novel)`` (0 when both are 0)."""
    return 0.0 if base + novel == 0 else 2.0 * base * novel / (base + novel)


def base_novel_accuracy(scores: torch.Tensor, labels: torch.Tensor, base_classes: Sequence[int]) -> dict[str, float]:
    """Base, novel and harmonic-mean top-1 accuracy, each side classified among its own classes.

    Args:
        scores: (N, K) over all classes.
        labels: (N,) in ``[0, K)``.
        base_classes: Indices of the base (training) classes; the rest are novel.
    """
    num_classes = scores.shape[1]
    is_base = torch.zeros(num_classes, dtype=torch.bool)
    is_base[list(base_classes)] = True
    result = {}
    for name, columns in (("base", is_base), ("novel", ~is_base)):
        rows = columns[labels]  # videos of this side
        index = torch.nonzero(columns).flatten()  # (K_side,) class ids
        remap = torch.full((num_classes,), -1, dtype=torch.long)
        remap[index] = torch.arange(index.numel())
        result[name] = topk_accuracy(scores[rows][:, index], remap[labels[rows]], 1)
    result["hm"] = harmonic_mean(result["base"], result["novel"])
    return result


def classification_metrics(
    scores: torch.Tensor,
    labels: torch.Tensor,
    class_names: Optional[Sequence[str]] = None,
    base_classes: Optional[Sequence[int]] = None,
) -> dict:
    """Every metric of one evaluation set.

    Returns:
        ``{"num_videos", "top1", "top5", "mean_class_accuracy", "per_class": {name: acc}}`` and,
        with ``base_classes``, ``"base"``, ``"novel"``, ``"hm"``.
    """
    num_classes = scores.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    per_class = per_class_accuracy(scores, labels, num_classes)
    present = [a for a in per_class if a is not None]
    metrics = {
        "num_videos": int(labels.numel()),
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "mean_class_accuracy": sum(present) / len(present) if present else float("nan"),
        "per_class": dict(zip(names, per_class)),
    }
    if base_classes is not None:
        metrics.update(base_novel_accuracy(scores, labels, base_classes))
    return metrics


SUMMARY_KEYS = ("top1", "top5", "mean_class_accuracy", "base", "novel", "hm")


def summarize_groups(results: Mapping[str, dict], groups: Mapping[str, Optional[str]]) -> dict[str, dict]:
    """Mean and population std of each summary metric over the sets of each group.

    Args:
        results: Set name -> :func:`classification_metrics` output.
        groups: Set name -> group name (``None``: not grouped).

    Returns:
        Group -> ``{"sets": [...], "top1": {"mean", "std"}, ...}``.
    """
    members: dict[str, list[str]] = {}
    for name, group in groups.items():
        if group is not None and name in results:
            members.setdefault(group, []).append(name)
    summary = {}
    for group, names in members.items():
        entry: dict = {"sets": sorted(names)}
        for key in SUMMARY_KEYS:
            values = [results[n][key] for n in names if key in results[n]]
            if values:
                mean = sum(values) / len(values)
                entry[key] = {"mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))}
        summary[group] = entry
    return summary


def markdown_table(results: Mapping[str, dict], groups: Optional[Mapping[str, dict]] = None) -> str:
    """A markdown table of the summary metrics of every set, then of every group (mean ± std)."""
    keys = [k for k in SUMMARY_KEYS if any(k in r for r in results.values())]
    lines = ["| set | videos | skipped | " + " | ".join(keys) + " |", "|---" * (len(keys) + 3) + "|"]
    for name, metrics in results.items():
        cells = [f"{metrics[k]:.2f}" if k in metrics else "" for k in keys]
        lines.append(f"| {name} | {metrics['num_videos']} | {metrics.get('skipped', 0)} | " + " | ".join(cells) + " |")
    for group, entry in (groups or {}).items():
        cells = [f"{entry[k]['mean']:.2f} ± {entry[k]['std']:.2f}" if k in entry else "" for k in keys]
        lines.append(f"| **{group}** (mean ± std of {len(entry['sets'])}) | | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_json(results: Mapping[str, dict], groups: Mapping[str, dict], extra: Optional[dict] = None) -> str:
    """The JSON report: ``{"sets": results, "groups": groups, **extra}``; NaN written as null."""
    def clean(value):
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean({"sets": dict(results), "groups": dict(groups), **(extra or {})}), indent=2)


def class_indices(names: Iterable[str], class_names: Sequence[str]) -> list[int]:
    """Indices of ``names`` in ``class_names`` (whitespace and case ignored).

    Raises:
        froster.data.textfiles.DataFileError: A name that is not among ``class_names``.
    """
    from froster.data.textfiles import DataFileError

    key = {" ".join(n.split()).lower(): i for i, n in enumerate(class_names)}
    wanted = [" ".join(n.split()).lower() for n in names]
    unknown = [n for n in wanted if n not in key]
    if unknown:
        raise DataFileError(f"base class(es) not among the class names: {unknown[:10]}")
    return [key[n] for n in wanted]


__all__ = [
    "base_novel_accuracy",
    "class_indices",
    "classification_metrics",
    "harmonic_mean",
    "markdown_table",
    "per_class_accuracy",
    "summarize_groups",
    "to_json",
    "topk_accuracy",
]
