"""Zero-shot evaluation of a student: template-ensemble text features, multi-view fusion, DDP.

For each evaluation set the class texts are turned into the 29 prompt sets of
:mod:`froster.text`; the student's text features of all of them are L2-normalised, averaged and
renormalised (the test-time ensemble). Each video comes as V temporal views (the paper: 3 clips
x 1 centre crop); the views' logits are fused by averaging their softmax probabilities
(``view_average="probs"``, PySlowFast's test ensemble) or the logits themselves (``"logits"``).

With several processes, :class:`froster.data.EvalDistributedSampler` gives every video to
exactly one rank (no padding duplicates), and the per-video scores are gathered by dataset index
before the metrics are computed, so the numbers do not depend on the number of GPUs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, cast

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from froster.distributed import DistInfo, all_gather_objects, autocast
from froster.evaluation import metrics as M
from froster.losses import student_logits
from froster.protocols import VideoStudent, encode_video_for_head
from froster.text import ClassText, ensemble_features, evaluation_prompt_sets
from froster.training.configs import RunConfig


@torch.no_grad()
def class_text_features(student: nn.Module, classes: Sequence[ClassText], ensemble: bool = True) -> torch.Tensor:
    """(K, D) class features: the 29-set ensemble (or the first template only), see :func:`froster.text.ensemble_features`."""
    device = student.logit_scale.device
    tokenizer = student_tokenizer(student)
    sets = evaluation_prompt_sets(classes, ensemble)
    encode_text = cast(VideoStudent, student).encode_text
    return ensemble_features([encode_text(tokenizer(prompts).to(device)) for prompts in sets])


def student_tokenizer(student: nn.Module):
    """The student's tokenizer; a ``TypeError`` naming the fix when it has none."""
    tokenizer = getattr(student, "tokenizer", None)
    if tokenizer is None:
        raise TypeError(f"{type(student).__name__} has no tokenizer to turn class names into prompts; give it a .tokenizer")
    return tokenizer


@torch.no_grad()
def video_scores(student: nn.Module, video: torch.Tensor, text_features: torch.Tensor, view_average: str = "probs") -> torch.Tensor:
    """Fused scores of multi-view videos.

    Args:
        video: (B, V, C, T, H, W) views, or (B, C, T, H, W) for one view.
        text_features: (K, D) class features.
        view_average: ``"probs"``: mean of the views' softmax probabilities; ``"logits"``: mean
            of their logits.

    Returns:
        (B, K) float32 probabilities or logits.
    """
    if video.dim() == 5:
        video = video[:, None]
    b, v = video.shape[:2]
    encoding = encode_video_for_head(student, video.flatten(0, 1))  # features (B*V, T, D) or (B*V, D)
    features = encoding.features
    logits = student_logits(student, features, text_features.to(features.dtype), **encoding.head_inputs)
    logits = logits.float().reshape(b, v, -1)  # (B, V, K)
    if view_average == "probs":
        return logits.softmax(dim=-1).mean(dim=1)
    if view_average == "logits":
        return logits.mean(dim=1)
    raise ValueError(f"view_average must be 'probs' or 'logits', got {view_average!r}")


@torch.no_grad()
def evaluate_dataset(
    student: nn.Module,
    loader: torch.utils.data.DataLoader,
    classes: Sequence[ClassText],
    info: DistInfo = DistInfo(),
    *,
    view_average: str = "probs",
    ensemble: bool = True,
    precision: str = "fp32",
    base_classes: Optional[Sequence[int]] = None,
    class_names: Optional[Sequence[str]] = None,
    progress: bool = False,
    description: str = "eval",
) -> dict:
    """Metrics of one evaluation set, identical on every rank.

    Returns:
        :func:`froster.evaluation.metrics.classification_metrics` plus ``"skipped"`` (unreadable
        videos, left out of every denominator).
    """
    was_training = student.training
    student.eval()
    with autocast(info.device, precision):
        text = class_text_features(student, classes, ensemble)  # (K, D)
    indices, scores, labels, skipped = [], [], [], 0
    for batch in tqdm(loader, desc=description, disable=not (progress and info.is_main), leave=False):
        skipped += int(batch["skipped"])
        if "video" not in batch:
            continue
        with autocast(info.device, precision):
            fused = video_scores(student, batch["video"].to(info.device, non_blocking=True), text, view_average)
        indices.append(batch["index"].cpu())
        scores.append(fused.cpu())
        labels.append(batch["label"].cpu())
    student.train(was_training)
    local = (_cat(indices, torch.long), _cat(scores, torch.float32, len(classes)), _cat(labels, torch.long), skipped)
    # One collective per set (not per batch): ranks may hold different numbers of batches.
    parts = all_gather_objects(local)
    index = torch.cat([p[0] for p in parts])
    order = index.argsort()
    if index.unique().numel() != index.numel():
        raise RuntimeError("a video was evaluated twice across ranks; use EvalDistributedSampler")
    all_scores = torch.cat([p[1] for p in parts])[order]
    all_labels = torch.cat([p[2] for p in parts])[order]
    result = M.classification_metrics(all_scores, all_labels, class_names, base_classes)
    result["skipped"] = sum(p[3] for p in parts)
    return result


def _cat(tensors: list[torch.Tensor], dtype: torch.dtype, width: Optional[int] = None) -> torch.Tensor:
    if tensors:
        return torch.cat(tensors)
    return torch.zeros((0, width) if width else (0,), dtype=dtype)


def evaluate_run(
    student: nn.Module,
    config: RunConfig,
    info: DistInfo = DistInfo(),
    output_dir: Optional[str] = None,
    sets: Optional[Sequence[str]] = None,
    progress: bool = False,
) -> dict:
    """Evaluate on every set of ``config.eval.sets`` (or the named ``sets``) and write the report.

    Rank 0 writes ``metrics.json`` (per set, per group mean/std) and ``metrics.md`` into
    ``output_dir`` when given.

    Returns:
        ``{"sets": {name: metrics}, "groups": {group: summary}}``.
    """
    from froster.data.classes import read_class_names
    from froster.training.data import class_prompts, eval_dataset, eval_loader, resolve

    names = list(sets) if sets is not None else list(config.eval.sets)
    unknown = sorted(set(names) - set(config.eval.sets))
    if unknown:
        raise KeyError(f"unknown evaluation set(s) {unknown}; known: {sorted(config.eval.sets)}")
    student.to(info.device)
    results = {}
    for name in names:
        spec = config.eval.sets[name]
        root = spec.root if spec.root is not None else config.data.root
        dataset = eval_dataset(config.data, spec, student)
        class_names = read_class_names(resolve(root, spec.class_names))
        base = None
        if spec.base_classes is not None:
            base = M.class_indices(read_class_names(resolve(root, spec.base_classes)), class_names)
        loader = eval_loader(dataset, config.eval.batch_size, config.eval.num_workers, info.rank, info.world_size)
        results[name] = evaluate_dataset(
            student, loader, class_prompts(root, spec.class_names, spec.descriptions), info,
            view_average=config.eval.view_average, ensemble=config.eval.ensemble,
            precision=config.train.precision, base_classes=base, class_names=class_names,
            progress=progress, description=f"eval {name}",
        )
    groups = M.summarize_groups(results, {n: config.eval.sets[n].group for n in names})
    if output_dir is not None and info.is_main:
        from froster.training.checkpoint import atomic_write_bytes

        out = Path(output_dir)
        atomic_write_bytes(out / "metrics.json", M.to_json(results, groups, {"view_average": config.eval.view_average}).encode())
        atomic_write_bytes(out / "metrics.md", M.markdown_table(results, groups).encode())
    return {"sets": results, "groups": groups}


__all__ = ["class_text_features", "evaluate_dataset", "evaluate_run", "video_scores"]
