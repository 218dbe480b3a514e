"""The two ends of open_clip's vision transformer, for students that run CLIP's blocks themselves.

Students such as vclip and xclip change what happens *between* CLIP's ViT blocks, so they run
the embedding step, their own block loop and the pooling step separately. open_clip's
``VisionTransformer.forward`` does exactly these three things, but its two ends are private
methods whose names and signatures have changed between releases. They are written out here from
the model's public attributes; ``tests/students/test_open_clip_vit.py`` checks that
``pool_tokens(blocks(embed_images(x)))`` equals ``visual(x)`` bit for bit, so a change in
open_clip's forward is caught instead of silently computing something else.
"""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["embed_images", "pool_tokens"]


def embed_images(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Patch + class + position embeddings, patch dropout and ``ln_pre``: (N, C, H, W) -> (N, 1 + P, W)."""
    x = visual.conv1(images)  # (N, W, grid, grid)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (N, P, W)
    if getattr(visual, "class_embedding", None) is not None:
        cls = visual.class_embedding.to(x.dtype).reshape(1, 1, -1).expand(x.shape[0], -1, -1)  # (N, 1, W)
        x = torch.cat([cls, x], dim=1)  # (N, 1 + P, W)
    x = x + visual.positional_embedding.to(x.dtype)
    x = visual.patch_dropout(x)
    return visual.ln_pre(x)


def pool_tokens(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Pooling, ``ln_post`` and the projection: tokens (N, L, W) -> (N, D)."""
    if getattr(visual, "attn_pool", None) is not None:
        raise NotImplementedError("vision towers with attentional pooling (CoCa-style) are not supported by this student")
    if getattr(visual, "final_ln_after_pool", False):
        pooled = visual.ln_post(_global_pool(visual, tokens))
    else:
        pooled = _global_pool(visual, visual.ln_post(tokens))
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled  # (N, D)


def _global_pool(visual: nn.Module, x: torch.Tensor) -> torch.Tensor:
    pool_type = getattr(visual, "pool_type", "tok")
    if pool_type == "avg":
        return x[:, 1:].mean(dim=1)
    if pool_type == "tok":
        return x[:, 0]
    if pool_type == "avg_all":
        return x.mean(dim=1)
    if pool_type == "none":
        return x
    raise NotImplementedError(f"open_clip pool_type {pool_type!r} is not supported by this student")
