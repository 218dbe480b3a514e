"""Zero-shot prediction on video files with any class names.

The video is read and cut into the test views exactly as in evaluation (``data.num_test_clips``
temporal clips, resized and centre-cropped), the class names go through the 29-prompt ensemble,
and the views' softmax probabilities are averaged::

    from froster.evaluation.predict import predict_file
    from froster.training.build import load_trained_student
    student, config = load_trained_student("runs/k400/avg.safetensors")
    predict_file(student, "clip.mp4", ["juggling", "abseiling", "surfing"], config.data)
    # [("juggling", 0.91), ("surfing", 0.06), ("abseiling", 0.03)]
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn

from froster.evaluation.evaluator import class_text_features, video_scores
from froster.text import class_texts_from
from froster.training.configs import DataConfig

PathLike = Union[str, os.PathLike]


def read_test_views(path: PathLike, data: DataConfig, student: Optional[nn.Module] = None) -> torch.Tensor:
    """(V, C, T, H, W) normalised test views of one video file (with ``student``'s pixel statistics when it has them)."""
    from froster.data import CLIP_MEAN, CLIP_STD, FrameSampler, TestTransform, read_frames

    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a video file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    sampler = FrameSampler(mode=data.sampling, num_frames=data.num_frames, stride=data.stride, num_test_clips=data.num_test_clips)
    frames = read_frames(path, lambda n, fps: sampler(n, train=False, fps=fps), backend=data.backend)  # (V, T, 3, H, W)
    mean, std = getattr(student, "pixel_mean", CLIP_MEAN), getattr(student, "pixel_std", CLIP_STD)
    return TestTransform(data.image_size, mean=mean, std=std)(frames)  # (V, C, T, H, W)


@torch.no_grad()
def predict_file(
    student: nn.Module,
    path: PathLike,
    class_texts: Sequence[str],
    data: DataConfig,
    *,
    class_names: Optional[Sequence[str]] = None,
    ensemble: bool = True,
    device: Union[str, torch.device] = "cpu",
) -> list[tuple[str, float]]:
    """Every class with its probability, most likely first.

    Args:
        student: A trained student (eval mode).
        path: The video file.
        class_texts: What stands for each class in the prompts (names or descriptions).
        data: Frame count, sampling, crop and number of views.
        class_names: Names to report (``class_texts`` when None).
        ensemble: Average the text features over all 29 prompt sets.
        device: Where to compute.
    """
    student = student.to(device).eval()
    text = class_text_features(student, class_texts_from(class_texts), ensemble)  # (K, D)
    views = read_test_views(path, data, student).to(device)  # (V, C, T, H, W)
    probs = video_scores(student, views[None], text, view_average="probs")[0]  # (K,)
    names = list(class_names if class_names is not None else class_texts)
    order = probs.argsort(descending=True).tolist()
    return [(names[i], float(probs[i])) for i in order]


def parse_classes(spec: str) -> list[str]:
    """Class names from a comma-separated list or from a class-name file, under the same rules
    (no empty or repeated names): :func:`froster.data.classes.parse_class_list`."""
    from froster.data.classes import parse_class_list

    return parse_class_list(spec)


__all__ = ["parse_classes", "predict_file", "read_test_views"]
