"""A user's own student, written from scratch: it offers the protocol and subclasses nothing."""
from __future__ import annotations

import math

import torch
import torch.nn as nn


class ToyVideoStudent(nn.Module):
    """Pools each frame to a colour vector, then a linear map; text is a bag of token embeddings."""

    def __init__(self, embed_dim: int = 32, num_frames: int = 4, vocab_size: int = 49408, pooled: bool = False, tokenizer=None):
        super().__init__()
        self.embed_dim, self.num_frames, self.pooled = embed_dim, num_frames, pooled
        self.frame_proj = nn.Linear(3 * 4, embed_dim)
        self.token_embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.tokenizer = tokenizer

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        pooled = nn.functional.adaptive_avg_pool2d(video.transpose(1, 2).reshape(b * t, c, h, w), 2)  # (B*T, C, 2, 2)
        frames = self.frame_proj(pooled.flatten(1)).reshape(b, t, -1)  # (B, T, D)
        return frames.mean(1) if self.pooled else frames

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(tokens)  # (K, D)


class ToyImageTextModel(nn.Module):
    """A stand-in for a CLIP-like model of another family: encode_image / encode_text only."""

    def __init__(self, embed_dim: int = 32, vocab_size: int = 49408):
        super().__init__()
        self.image_proj = nn.Linear(3 * 4, embed_dim)
        self.token_embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean")
        self.text_calls = 0

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(images, 2)  # (N, C, 2, 2)
        return self.image_proj(pooled.flatten(1))  # (N, D)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        self.text_calls += 1
        return self.token_embedding(tokens)  # (K, D)
