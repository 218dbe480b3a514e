"""Shared plumbing of the CLIP-based students: one open_clip CLIP, video checks, frame reshaping.

:class:`ClipVideoStudent` adopts the modules, parameters and buffers of an open_clip ``CLIP`` (or
``CustomTextCLIP``) as its own, so a student's ``state_dict`` keys are CLIP's keys and a CLIP
checkpoint loads into it with a plain ``load_state_dict``. Students add their own modules beside
them (their keys then come on top of CLIP's) and override :meth:`ClipVideoStudent.encode_video`.

A student file typically reads::

    @register_student("mine")
    class MyStudent(ClipVideoStudent):
        def __init__(self, clip="ViT-B-16", pretrained=None, num_frames=8, *, my_option=1, **clip_overrides):
            super().__init__(clip, pretrained, num_frames, **clip_overrides)

        def encode_video(self, video):
            images = self.frames_to_images(video)            # (B*T, C, H, W)
            tokens = self.embed_images(images)               # (B*T, N, W)
            for block in self.vision_blocks:
                tokens = block(tokens)
            return self.images_to_frames(self.pool_tokens(tokens), video.shape[0])  # (B, T, D)
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import torch
import torch.nn as nn

from froster import validation
from froster.clip_loading import PathLike, clip_embed_dim, create_open_clip
from froster.losses import video_text_logits

from ._open_clip_vit import embed_images, pool_tokens
from .checkpoints import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD

__all__ = ["ClipVideoStudent", "check_video"]


def check_video(video: torch.Tensor, num_frames: int, image_size: Optional[Sequence[int]] = None, name: str = "video") -> None:
    """Raise a ``ValueError`` naming ``name``, the expected and the actual shape of a bad video.

    The rank, channel and frame checks are :func:`froster.validation.check_video`'s; this adds
    the vision tower's image size, which open_clip would otherwise refuse deep inside.

    Args:
        video: Expected (B, 3, T, H, W) with ``T == num_frames``.
        num_frames: Frame count the model was built for.
        image_size: ``(H, W)`` the vision tower expects, or ``None`` to accept any size.
        name: Argument name used in the messages.
    """
    validation.check_video(video, name, num_frames)
    if image_size is not None and tuple(video.shape[3:]) != tuple(image_size):
        raise ValueError(
            f"{name} frames are {video.shape[3]}x{video.shape[4]} but the vision tower expects "
            f"{image_size[0]}x{image_size[1]} (shape {tuple(video.shape)})"
        )


class ClipVideoStudent(nn.Module):
    """Base of the students built on one open_clip CLIP.

    Frames go through ``self.visual`` (CLIP's vision tower), prompts through CLIP's text tower.
    The default :meth:`encode_video` encodes every frame independently (ViFi-CLIP's forward).

    Args:
        clip: An open_clip model name (``"ViT-B-16"``) or an open_clip CLIP instance.
        pretrained: open_clip pretrained tag or a local CLIP weights file; ``None`` keeps the
            random (or the instance's own) weights.
        num_frames: Frame count of the videos the student will see.
        tokenizer: Overrides the tokenizer; needed for a CLIP instance that does not use
            open_clip's default BPE tokenizer.
        **clip_overrides: ``create_open_clip`` keywords (``embed_dim``, ``vision_cfg``,
            ``text_cfg``, ``precision``, ``device``, ...).

    Attributes:
        tokenizer: ``list[str] -> (K, L)`` tokens with the model's context length.
        num_frames: Frame count the student was built for.
        embed_dim: Dimension D of CLIP's joint embedding space.
        logit_scale: CLIP's learnable temperature, log space.
    """

    def __init__(
        self,
        clip: Union[str, nn.Module] = "ViT-B-16",
        pretrained: Optional[PathLike] = None,
        num_frames: int = 8,
        *,
        tokenizer: Optional[Any] = None,
        **clip_overrides,
    ):
        super().__init__()
        if int(num_frames) < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        model, default_tokenizer = create_open_clip(clip, pretrained, **clip_overrides)
        self._adopt(model)
        self.tokenizer = tokenizer or default_tokenizer or _default_tokenizer(model)
        self.num_frames = int(num_frames)
        self.embed_dim = clip_embed_dim(model)
        # Where CLIP's weights came from (None: random, or an instance's own): weight patching
        # needs real ones.
        self.clip_weights: Optional[str] = None if pretrained is None else os.fspath(pretrained)
        # The frame normalisation the weights expect: CLIP's, unless a released checkpoint
        # trained with another one is loaded (ViFi-CLIP and X-CLIP used ImageNet's).
        self.pixel_mean: tuple[float, ...] = CLIP_PIXEL_MEAN
        self.pixel_std: tuple[float, ...] = CLIP_PIXEL_STD

    def _adopt(self, model: nn.Module) -> None:
        # Registering CLIP's own children, parameters and buffers on the student (instead of
        # holding the CLIP as a submodule) keeps the state-dict keys identical to CLIP's.
        if not hasattr(model, "visual") or not hasattr(model, "logit_scale"):
            raise TypeError(f"clip must be an open_clip CLIP with .visual and .logit_scale, got {type(model).__name__}")
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in model.named_buffers(recurse=False):
            self.register_buffer(name, buffer, persistent=name not in model._non_persistent_buffers_set)
        # CLIP's own state-dict keys, for the checkpoint loader's hooks below.
        self._clip_state_keys = tuple(model.state_dict().keys())
        # Plain attributes the text forward needs; the CLIP object itself is not kept.
        self.context_length = getattr(model, "context_length", None)
        self.text_pool_type = getattr(model, "text_pool_type", "argmax")
        self.text_eos_id = getattr(model, "text_eos_id", None)

    # ---- hooks of froster.adapters.checkpoints.load_student_checkpoint ----------------------

    def clip_state_dict_key(self, clip_key: str) -> Optional[str]:
        """The key of this student's state dict that holds CLIP's weight ``clip_key`` (``None``: none).

        Identity here, since the student adopts CLIP's modules; a student that renames CLIP's
        weights (e.g. by wrapping layers) overrides it.
        """
        return clip_key

    @property
    def clip_state_keys(self) -> tuple[str, ...]:
        """CLIP's own state-dict keys (CLIP's names), whatever the student calls them."""
        return self._clip_state_keys

    def non_clip_state_keys(self) -> list[str]:
        """State-dict keys of modules the student adds to CLIP; CLIP checkpoints cannot set them."""
        from_clip = {self.clip_state_dict_key(k) for k in self._clip_state_keys}
        return sorted(set(self.state_dict()) - from_clip)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the blocks of both towers in the backward pass instead of storing activations."""
        self.visual.set_grad_checkpointing(enable)
        if isinstance(getattr(self, "text", None), nn.Module):
            self.text.set_grad_checkpointing(enable)
        else:
            self.transformer.grad_checkpointing = enable

    # ---- video plumbing -------------------------------------------------------------------

    @property
    def image_size(self) -> Optional[tuple[int, int]]:
        """``(H, W)`` the vision tower expects, when it says."""
        size = getattr(self.visual, "image_size", None)
        return None if size is None else tuple(size)

    def check_video(self, video: torch.Tensor) -> None:
        """Validate a (B, 3, T, H, W) video against ``num_frames`` and the image size."""
        check_video(video, self.num_frames, self.image_size)

    def frames_to_images(self, video: torch.Tensor) -> torch.Tensor:
        """Validate ``video`` and flatten its frames: (B, C, T, H, W) -> (B*T, C, H, W), frame-major per video."""
        self.check_video(video)
        b, c, t, h, w = video.shape
        return video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)

    @staticmethod
    def images_to_frames(features: torch.Tensor, batch: int) -> torch.Tensor:
        """(B*T, ...) -> (B, T, ...), the inverse of :meth:`frames_to_images` on the leading dim."""
        return features.reshape(batch, features.shape[0] // batch, *features.shape[1:])

    # ---- vision tower pieces, for students with their own block loop ----------------------

    @property
    def vision_blocks(self) -> nn.ModuleList:
        """The residual attention blocks of CLIP's vision transformer (batch-first tokens)."""
        return self.visual.transformer.resblocks

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """Patch + class + position embeddings and ``ln_pre``: (N, C, H, W) -> tokens (N, 1 + HW/p^2, W)."""
        return embed_images(self.visual, images)

    def pool_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP's pooling, ``ln_post`` and projection: tokens (N, L, W) -> (N, D)."""
        return pool_tokens(self.visual, tokens)

    # ---- the student contract -------------------------------------------------------------

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP's image encoder: (N, C, H, W) -> (N, D), not normalised."""
        return self.visual(images)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Frames encoded independently: (B, C, T, H, W) -> (B, T, D), not normalised."""
        images = self.frames_to_images(video)  # (B*T, C, H, W)
        return self.images_to_frames(self.encode_images(images), video.shape[0])  # (B, T, D)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP's text encoder: (K, L) tokens -> (K, D), not normalised."""
        if isinstance(getattr(self, "text", None), nn.Module):  # CustomTextCLIP keeps its tower whole
            return self.text(tokens)
        x = self.token_embedding(tokens).to(self.transformer.get_cast_dtype())  # (K, L, W)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.transformer(x, attn_mask=self.attn_mask)
        x = self.ln_final(x)
        x = _text_pool(x, tokens, self.text_pool_type, self.text_eos_id)  # (K, W)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x if self.text_projection is None else x @ self.text_projection  # (K, D)

    def classify(self, frame_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Default head (ViFi-CLIP's): ``exp(logit_scale) * cos(mean_t frame_features, text_features)`` -> (B, K).

        Students with another head override it; the distiller calls it on the raw outputs of
        :meth:`encode_video` (B, T, D) and :meth:`encode_text` (K, D).
        """
        return video_text_logits(frame_features, text_features, self.logit_scale)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of :meth:`classify` for a video batch and tokenized prompts."""
        return self.classify(self.encode_video(video), self.encode_text(tokens))

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, embed_dim={self.embed_dim}"


def _text_pool(x: torch.Tensor, tokens: torch.Tensor, pool_type: str, eos_id: Optional[int]) -> torch.Tensor:
    # Same choices as open_clip's text_global_pool.
    if pool_type == "argmax":  # OpenAI CLIP: the EOT token has the largest id
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    if pool_type == "eos":
        return x[torch.arange(x.shape[0], device=x.device), (tokens == eos_id).int().argmax(dim=-1)]
    if pool_type == "first":
        return x[:, 0]
    if pool_type == "last":
        return x[:, -1]
    return x


def _default_tokenizer(model: nn.Module):
    import open_clip

    return open_clip.get_tokenizer("ViT-B-16", context_length=getattr(model, "context_length", None))
