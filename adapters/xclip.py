"""X-CLIP-style student: cross-frame messages in the ViT, frame integration and video prompts.

Ni et al., "Expanding Language-Image Pretrained Models for General Video Recognition", ECCV 2022.
The parts are in :mod:`froster.adapters.xclip_modules`; about 45M parameters are added to a
ViT-B/16 CLIP (45,308,416 at 8 frames, see :func:`xclip_new_parameter_count`).

What FROSTER distils, and what the head adds on top:

* ``encode_video`` returns the per-frame features (B, T, D) of the message-passing ViT, before
  the multi-frame integration transformer: those are comparable with the frozen CLIP teacher's
  frame features;
* ``encode_text`` returns CLIP's text features (K, D), before the video prompts;
* ``classify`` applies the integration transformer to the frames and the prompt generator to the
  text, as X-CLIP's head does, so both are trained by the classification loss.

The prompt generator needs the video's patch tokens, which are not part of ``encode_video``'s
output: ``encode_video`` keeps them (``visual_tokens``, (B, N, D), averaged over time) for the
``classify`` call that follows on the same batch; ``classify(..., visual_tokens=...)`` takes
them explicitly.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from froster.clip_loading import PathLike
from froster.registry import register_student

from ._clip_video import ClipVideoStudent
from .xclip_modules import CrossFrameBlock, MultiframeIntegration, VideoPromptGenerator

__all__ = ["XCLIP", "xclip_new_parameter_count"]


@register_student("xclip")
class XCLIP(ClipVideoStudent):
    """CLIP with X-CLIP's cross-frame communication, integration transformer and video prompts.

    Args:
        clip: open_clip model name or CLIP instance (a ViT with a class token).
        pretrained: open_clip tag or local CLIP weights file.
        num_frames: Frame count T of the videos.
        mit_layers: Blocks of the multi-frame integration transformer.
        prompt_layers: Layers of the video prompt generator.
        prompt_alpha: Initial scale of the video prompts.
        tokenizer: Tokenizer override.
        **clip_overrides: open_clip config overrides (``embed_dim``, ``vision_cfg``, ...).

    Attributes:
        visual_tokens: (B, N, D) patch tokens of the last ``encode_video`` call, averaged over time.
    """

    def __init__(
        self,
        clip: Union[str, nn.Module] = "ViT-B-16",
        pretrained: Optional[PathLike] = None,
        num_frames: int = 8,
        *,
        mit_layers: int = 1,
        prompt_layers: int = 2,
        prompt_alpha: float = 0.1,
        tokenizer=None,
        **clip_overrides,
    ):
        super().__init__(clip, pretrained, num_frames, tokenizer=tokenizer, **clip_overrides)
        if getattr(self.visual, "pool_type", "tok") != "tok" or getattr(self.visual, "class_embedding", None) is None:
            raise ValueError("xclip needs a vision transformer pooled by its class token (pool_type='tok')")
        blocks = self.vision_blocks
        for i in range(len(blocks)):
            blocks[i] = CrossFrameBlock(blocks[i], self.num_frames)
        width = blocks[0].attn.embed_dim
        self.mit = MultiframeIntegration(self.num_frames, self.embed_dim, mit_layers)
        self.prompt_visual_ln = nn.LayerNorm(width)
        self.prompt_visual_proj = nn.Parameter(width**-0.5 * torch.randn(width, self.embed_dim))
        self.prompt_generator = VideoPromptGenerator(self.embed_dim, prompt_layers, prompt_alpha)
        self.visual_tokens: Optional[torch.Tensor] = None

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> per-frame features (B, T, D), frames talking through messages."""
        batch = video.shape[0]
        x = self.embed_images(self.frames_to_images(video))  # (B*T, N+1, W)
        use_checkpoint = self.visual.transformer.grad_checkpointing and torch.is_grad_enabled()
        for block in self.vision_blocks:
            x = checkpoint(block, x, use_reentrant=False) if use_checkpoint else block(x)
        patches = self.prompt_visual_ln(x[:, 1:]) @ self.prompt_visual_proj  # (B*T, N, D)
        self.visual_tokens = self.images_to_frames(patches, batch).mean(dim=1)  # (B, N, D)
        return self.images_to_frames(self.pool_tokens(x), batch)  # (B, T, D)

    def video_text_features(self, text_features: torch.Tensor, visual_tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Text features conditioned on each video: (K, D) -> (B, K, D), ``text + prompt(text, video)``."""
        if visual_tokens is None:
            visual_tokens = self.visual_tokens
            if visual_tokens is None:
                raise RuntimeError("xclip's head needs the video's visual tokens: call encode_video first or pass visual_tokens")
        text = text_features.unsqueeze(0).expand(visual_tokens.shape[0], -1, -1)  # (B, K, D)
        return text + self.prompt_generator(text, visual_tokens)

    def classify(
        self, frame_features: torch.Tensor, text_features: torch.Tensor, visual_tokens: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """X-CLIP's head on the raw outputs: (B, T, D) frames, (K, D) text -> (B, K) logits.

        ``logits[b, k] = exp(logit_scale) * cos(mit(frames[b]), text[k] + prompt(text, video b)[k])``.

        Args:
            frame_features: ``encode_video`` output.
            text_features: ``encode_text`` output.
            visual_tokens: (B, N, D) visual tokens of the same videos; by default those kept by
                the last ``encode_video`` call, which must have seen the same batch.
        """
        if visual_tokens is None and self.visual_tokens is not None and self.visual_tokens.shape[0] != frame_features.shape[0]:
            raise ValueError(
                f"frame_features hold {frame_features.shape[0]} videos but the last encode_video saw "
                f"{self.visual_tokens.shape[0]}; classify the features of the last encode_video call or pass visual_tokens"
            )
        video = F.normalize(self.mit(frame_features), dim=-1)  # (B, D)
        text = F.normalize(self.video_text_features(text_features, visual_tokens), dim=-1)  # (B, K, D)
        return self.logit_scale.exp() * torch.einsum("bd,bkd->bk", video, text)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of :meth:`classify`."""
        return self.classify(self.encode_video(video), self.encode_text(tokens))


def xclip_new_parameter_count(
    vision_width: int, vision_layers: int, embed_dim: int, num_frames: int, mit_layers: int = 1, prompt_layers: int = 2
) -> int:
    """Parameters X-CLIP adds to a CLIP, from the shapes (W: vision width, D: embedding dim).

    ``vision_layers * (5W^2 + 7W)`` (message fc, norm, attention) ``+ T D + mit_layers (12D^2 + 13D)``
    (integration transformer) ``+ 3D + prompt_layers (12D^2 + 10D)`` (prompt generator)
    ``+ 2W + W D`` (visual-token norm and projection).
    """
    w, d = vision_width, embed_dim
    messages = vision_layers * (5 * w * w + 7 * w)
    mit = num_frames * d + mit_layers * (12 * d * d + 13 * d)
    prompts = 3 * d + prompt_layers * (12 * d * d + 10 * d) + 2 * w + w * d
    return messages + mit + prompts
