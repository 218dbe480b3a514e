"""ViFi-CLIP student: CLIP fully fine-tuned on videos, frames encoded independently.

Rasheed et al., "Fine-tuned CLIP Models are Efficient Video Learners", CVPR 2023. Each frame goes
through CLIP's image encoder on its own; the video feature is the mean of the frame features,
compared by cosine similarity with the class text features. No parameter is added: the state
dict is CLIP's, and every weight (both towers and the temperature) is trained.

``encode_video`` returns the per-frame features (B, T, D) so that the distiller can distil them;
the head, :meth:`ViFiCLIP.classify`, is the distiller's default one:
``exp(logit_scale) * cos(mean_t frame_features, text_features)``.
"""
from __future__ import annotations

from typing import Optional, Union

import torch.nn as nn

from froster.clip_loading import PathLike
from froster.registry import register_student

from ._clip_video import ClipVideoStudent

__all__ = ["ViFiCLIP"]


@register_student("vificlip")
class ViFiCLIP(ClipVideoStudent):
    """ViFi-CLIP student: per-frame CLIP image features, mean-pooled by the head.

    Args:
        clip: open_clip model name or CLIP instance.
        pretrained: open_clip tag or local CLIP weights file.
        num_frames: Frame count T of the videos.
        tokenizer: Tokenizer override.
        **clip_overrides: open_clip config overrides (``embed_dim``, ``vision_cfg``, ...).
    """

    def __init__(
        self,
        clip: Union[str, nn.Module] = "ViT-B-16",
        pretrained: Optional[PathLike] = None,
        num_frames: int = 8,
        *,
        tokenizer=None,
        **clip_overrides,
    ):
        super().__init__(clip, pretrained, num_frames, tokenizer=tokenizer, **clip_overrides)

    # encode_video and classify are the base class's: every frame through CLIP's image encoder
    # on its own, (B, C, T, H, W) -> (B, T, D), then the cosine of the mean frame feature.

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}"
