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
output: :meth:`XCLIP.encode_video_for_head` returns them beside the frame features
(``head_inputs["visual_tokens"]``, (B, N, D), averaged over time) and ``classify`` takes them as
an argument. Nothing is kept between calls.

X-CLIP's released recipe trains with the text tower frozen (its ``FIX_TEXT`` default):
``freeze_text=True`` does the same, and caches the frozen text features per prompt set.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from froster.clip_loading import PathLike
from froster.protocols import VideoEncoding
from froster.registry import register_student
from froster.teachers.text_cache import TextFeatureCache, prompt_key

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
        freeze_text: Freeze CLIP's text tower, as X-CLIP's released recipe does (``FIX_TEXT``);
            its features are then cached per prompt set. The prompt generator still trains.
        tokenizer: Tokenizer override.
        **clip_overrides: open_clip config overrides (``embed_dim``, ``vision_cfg``, ...).
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
        freeze_text: bool = False,
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
        self.freeze_text = bool(freeze_text)
        self._frozen_text = TextFeatureCache()
        if self.freeze_text:
            for name, param in self.named_parameters():
                if self._is_text_parameter(name):
                    param.requires_grad_(False)

    @staticmethod
    def _is_text_parameter(name: str) -> bool:
        return name.startswith(("transformer.", "token_embedding.", "ln_final.", "text_projection", "positional_embedding", "text."))

    def encode_video_for_head(self, video: torch.Tensor) -> VideoEncoding:
        """(B, C, T, H, W) -> frame features (B, T, D) and the head's ``visual_tokens`` (B, N, D)."""
        batch = video.shape[0]
        x = self.embed_images(self.frames_to_images(video))  # (B*T, N+1, W)
        use_checkpoint = self.visual.transformer.grad_checkpointing and torch.is_grad_enabled()
        for block in self.vision_blocks:
            x = checkpoint(block, x, use_reentrant=False) if use_checkpoint else block(x)
        patches = self.prompt_visual_ln(x[:, 1:]) @ self.prompt_visual_proj  # (B*T, N, D)
        visual_tokens = self.images_to_frames(patches, batch).mean(dim=1)  # (B, N, D)
        frames = self.images_to_frames(self.pool_tokens(x), batch)  # (B, T, D)
        return VideoEncoding(frames, {"visual_tokens": visual_tokens})

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> per-frame features (B, T, D), frames talking through messages."""
        return self.encode_video_for_head(video).features

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP's text features (K, D); with ``freeze_text``, computed once per prompt set."""
        if not self.freeze_text:
            return super().encode_text(tokens)
        # Device and dtype changes clear the cache (_apply); features computed under autocast come
        # out in its dtype, so they are kept apart.
        device_type = tokens.device.type
        autocast = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
        key = (prompt_key(tokens), str(autocast))
        return self._frozen_text.get(key, lambda: _no_grad(super(XCLIP, self).encode_text, tokens))

    def _apply(self, fn, recurse: bool = True):
        self._frozen_text.clear()  # cached features live on the old device / dtype
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self._frozen_text.clear()  # new weights, new text features
        super()._load_from_state_dict(*args, **kwargs)

    def video_text_features(self, text_features: torch.Tensor, visual_tokens: torch.Tensor) -> torch.Tensor:
        """Text features conditioned on each video: (K, D), (B, N, D) -> (B, K, D), ``text + prompt(text, video)``."""
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
            visual_tokens: (B, N, D) visual tokens of the same videos, from
                :meth:`encode_video_for_head` (``head_inputs["visual_tokens"]``).
        """
        if visual_tokens is None:
            raise TypeError(
                "xclip's head needs the videos' visual_tokens: take them from encode_video_for_head(video).head_inputs "
                "(froster.protocols.encode_video_for_head and froster.student_logits pass them on)"
            )
        if visual_tokens.shape[0] != frame_features.shape[0]:
            raise ValueError(
                f"visual_tokens hold {visual_tokens.shape[0]} videos but frame_features {frame_features.shape[0]}: "
                "pass the visual_tokens of the same videos"
            )
        video = F.normalize(self.mit(frame_features), dim=-1)  # (B, D)
        text = F.normalize(self.video_text_features(text_features, visual_tokens), dim=-1)  # (B, K, D)
        return self.logit_scale.exp() * torch.einsum("bd,bkd->bk", video, text)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of :meth:`classify`."""
        encoding = self.encode_video_for_head(video)
        return self.classify(encoding.features, self.encode_text(tokens), **encoding.head_inputs)


def _no_grad(fn, *args):
    with torch.no_grad():
        return fn(*args)


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
