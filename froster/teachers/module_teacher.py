"""A frozen teacher around any module that offers ``encode_image`` and ``encode_text``."""
from __future__ import annotations

from typing import Optional, Protocol, cast

import torch
import torch.nn as nn

from froster.protocols import Tokenizer
from froster.validation import check_video


class _ImageTextEncoder(Protocol):
    """What :class:`ModuleTeacher` needs of the model it wraps (checked when it is wrapped)."""

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, D) image features."""
        ...

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) tokens -> (K, D) text features."""
        ...


class ModuleTeacher(nn.Module):
    """Freezes ``model`` for good and exposes the teacher protocol.

    The wrapped model never receives gradients, stays in eval mode whatever ``train()`` is called
    with (the released code's teacher could be switched back to training mode by the trainer),
    and its frames are encoded under ``torch.no_grad``.

    Args:
        model: Any module with ``encode_image((N, C, H, W)) -> (N, D)`` and
            ``encode_text((K, L)) -> (K, D)``.
        tokenizer: ``list[str] -> (K, L)`` tokens, for string prompts.
        embed_dim: Output dimension D; read from ``model`` when it is an open_clip model.
        dtype: Cast the teacher's weights to this dtype (e.g. ``torch.bfloat16`` on a GPU: the
            teacher is only ever run forward, so half precision halves its cost).
    """

    # nn.Module.__getattr__ types `encode_image` as `Tensor | Module`: calls go through _ImageTextEncoder.
    model: nn.Module

    def __init__(self, model: nn.Module, tokenizer: Optional[Tokenizer] = None, embed_dim: Optional[int] = None, dtype: Optional[torch.dtype] = None):
        super().__init__()
        for method in ("encode_image", "encode_text"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"model of type {type(model).__name__} has no {method}(); a teacher needs encode_image and encode_text")
        self.model = model
        self.tokenizer = tokenizer
        if dtype is not None:
            self.model.to(dtype)
        self.model.requires_grad_(False)
        super().train(False)
        self.embed_dim = embed_dim if embed_dim is not None else _infer_embed_dim(model)

    def train(self, mode: bool = True) -> "ModuleTeacher":
        # The teacher is frozen: dropout, batch-norm statistics and friends stay in eval mode.
        return super().train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "ModuleTeacher":
        if requires_grad:
            raise RuntimeError("a frozen teacher cannot be made trainable; build a student from it instead")
        return super().requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @torch.no_grad()
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> per-frame image features (B, T, D)."""
        check_video(video, "video")
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W)
        features = cast(_ImageTextEncoder, self.model).encode_image(frames.to(self.dtype))  # (B*T, D)
        return features.reshape(b, t, -1)  # (B, T, D)

    @torch.no_grad()
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) tokens -> (K, D) text features."""
        return cast(_ImageTextEncoder, self.model).encode_text(tokens)


def _infer_embed_dim(model: nn.Module) -> Optional[int]:
    from froster.clip_loading import clip_embed_dim

    try:
        return clip_embed_dim(model)
    except ValueError:
        return getattr(model, "embed_dim", None)
