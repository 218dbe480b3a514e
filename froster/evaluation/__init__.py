"""Evaluation: accuracy metrics and reports, the multi-view evaluator, zero-shot prediction."""
from froster.evaluation.metrics import base_novel_accuracy, classification_metrics, harmonic_mean, summarize_groups, topk_accuracy

__all__ = ["base_novel_accuracy", "classification_metrics", "harmonic_mean", "summarize_groups", "topk_accuracy"]
