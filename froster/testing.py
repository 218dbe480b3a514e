"""Tiny models and synthetic inputs for tests, examples and the CPU benchmark default.

Nothing here downloads anything: the tiny CLIP is an open_clip ``ViT-B-16`` config shrunk through
open_clip's own config overrides, with random weights.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

TINY_CLIP_NAME = "ViT-B-16"
TINY_IMAGE_SIZE = 32
TINY_CONTEXT_LENGTH = 16


def tiny_clip_overrides(embed_dim: int = 32, width: int = 64, layers: int = 2, image_size: int = TINY_IMAGE_SIZE) -> dict[str, Any]:
    """open_clip ``create_model`` overrides for a ViT with 2 blocks, 2 heads and 2x2 patches of 16 px."""
    return dict(
        embed_dim=embed_dim,
        vision_cfg=dict(width=width, layers=layers, head_width=width // 2, patch_size=16, image_size=image_size),
        text_cfg=dict(width=width, layers=layers, heads=2, context_length=TINY_CONTEXT_LENGTH),
    )


def tiny_student_kwargs(num_frames: int = 4, **overrides) -> dict[str, Any]:
    """Keyword arguments for ``build_student(name, **kwargs)`` that build a tiny random student."""
    return dict(clip=TINY_CLIP_NAME, pretrained=None, num_frames=num_frames, **tiny_clip_overrides(**overrides))


def synthetic_video(batch: int = 2, frames: int = 4, size: int = TINY_IMAGE_SIZE, seed: Optional[int] = 0) -> torch.Tensor:
    """A random, CLIP-normalised-looking video batch, (B, 3, T, H, W)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(batch, 3, frames, size, size, generator=generator)


TINY_CLASS_NAMES = ("juggling", "abseiling", "surfing", "archery", "knitting")


def tiny_prompts(num_classes: int = 5) -> list[str]:
    """Class prompts in the paper's template style."""
    names = [TINY_CLASS_NAMES[i % len(TINY_CLASS_NAMES)] + ("" if i < len(TINY_CLASS_NAMES) else f" {i}") for i in range(num_classes)]
    return [f"a video of a person {name}." for name in names]


def tiny_build_kwargs(name: str, num_frames: int = 4, *, image_size: int = TINY_IMAGE_SIZE, **options: Any) -> dict[str, Any]:
    """Keyword arguments that build a tiny random student ``name``, ``options`` on top.

    A student whose own parts need other tiny arguments sets ``tiny_kwargs`` on its builder (a
    class attribute, or an attribute of the builder function): a dict merged over
    :func:`tiny_student_kwargs`, or a callable ``tiny_kwargs(num_frames) -> dict`` that replaces it.
    """
    from froster.registry import get_student_builder

    extra = getattr(get_student_builder(name), "tiny_kwargs", None)
    if callable(extra):
        kwargs = dict(extra(num_frames))
    else:
        kwargs = {**tiny_student_kwargs(num_frames, image_size=image_size), **(extra or {})}
    kwargs.update(options)
    return kwargs
