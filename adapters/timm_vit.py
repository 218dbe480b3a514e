"""A student whose vision tower is any timm image model, paired with CLIP's text tower.

The distiller only needs the student protocol, so the video side need not be open_clip's: here
each frame goes through a timm model (``forward_features`` then ``forward_head(pre_logits=True)``,
which every timm classifier offers), a linear projection takes its ``num_features`` to CLIP's
embedding dimension, and the frame features are mean-pooled by the default head. Text goes
through an open_clip CLIP text tower (its vision tower is dropped after building).

Everything trains, as in ViFi-CLIP's full fine-tuning; the projection starts random, so the
distillation from the frozen CLIP teacher is what aligns the timm features with CLIP's text
space. Frames are expected normalised with the mean and std the timm model was trained with
(OpenAI CLIP's for the ``*_clip_*`` ViTs, the same as the teacher's).

Example::

    student = build_student("timm_vit", timm_model="vit_base_patch16_clip_224.openai", timm_pretrained=True,
                            clip="ViT-B-16", pretrained="openai", num_frames=8)
"""
from __future__ import annotations

from typing import Any, Optional, Union

import torch
import torch.nn as nn

from froster.clip_loading import PathLike
from froster.registry import register_student

from ._clip_video import ClipVideoStudent

__all__ = ["TimmViTStudent"]


def _create_timm(model: Union[str, nn.Module], pretrained: bool, kwargs: Optional[dict[str, Any]]) -> nn.Module:
    if isinstance(model, nn.Module):
        if kwargs:
            raise ValueError("timm_kwargs only apply when timm_model is a name")
        return model
    import timm

    # num_classes=0: timm's feature extractor, without a classifier.
    return timm.create_model(model, pretrained=pretrained, **{"num_classes": 0, **(kwargs or {})})


@register_student("timm_vit")
class TimmViTStudent(ClipVideoStudent):
    """timm image model per frame + linear projection; CLIP text tower; mean-pooled default head.

    Args:
        clip: open_clip model name or CLIP instance providing the text tower and tokenizer.
        pretrained: open_clip tag or local CLIP weights file (for the text tower).
        num_frames: Frame count T of the videos.
        timm_model: A timm model name (``"vit_base_patch16_clip_224"``, with an optional
            ``.tag``) or a timm model instance.
        timm_pretrained: Whether timm loads its pretrained weights (a network or cache needed).
        timm_kwargs: Overrides for ``timm.create_model`` (``img_size``, ``embed_dim``, ``depth``,
            ``drop_path_rate``, ...).
        tokenizer: Tokenizer override.
        **clip_overrides: open_clip config overrides (``embed_dim``, ``text_cfg``, ...).

    Attributes:
        vision: The timm model.
        vision_proj: ``nn.Linear(num_features, embed_dim, bias=False)``.
    """

    tiny_kwargs = dict(timm_kwargs=dict(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=2))

    def __init__(
        self,
        clip: Union[str, nn.Module] = "ViT-B-16",
        pretrained: Optional[PathLike] = None,
        num_frames: int = 8,
        *,
        timm_model: Union[str, nn.Module] = "vit_base_patch16_clip_224",
        timm_pretrained: bool = False,
        timm_kwargs: Optional[dict[str, Any]] = None,
        tokenizer=None,
        **clip_overrides,
    ):
        super().__init__(clip, pretrained, num_frames, tokenizer=tokenizer, **clip_overrides)
        del self.visual  # CLIP's vision tower; the timm model replaces it
        self.vision = _create_timm(timm_model, timm_pretrained, timm_kwargs)
        width = getattr(self.vision, "num_features", None)
        if not isinstance(width, int) or not callable(getattr(self.vision, "forward_head", None)):
            raise TypeError(f"timm_model must be a timm model with num_features and forward_head, got {type(self.vision).__name__}")
        self.vision_proj = nn.Linear(width, self.embed_dim, bias=False)
        nn.init.normal_(self.vision_proj.weight, std=width**-0.5)  # CLIP's initialisation of its projection

    @property
    def image_size(self) -> Optional[tuple[int, int]]:
        """``(H, W)`` the timm model expects; ``None`` when it takes any size."""
        if getattr(self.vision, "dynamic_img_size", False):
            return None
        size = getattr(getattr(self.vision, "patch_embed", None), "img_size", None)
        return None if size is None else tuple(size)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, D): timm's pooled pre-logits features, projected."""
        features = self.vision.forward_head(self.vision.forward_features(images), pre_logits=True)  # (N, width)
        return self.vision_proj(features)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the blocks of the timm model and of the text tower in the backward pass."""
        self.vision.set_grad_checkpointing(enable)
        if isinstance(getattr(self, "text", None), nn.Module):
            self.text.set_grad_checkpointing(enable)
        else:
            self.transformer.grad_checkpointing = enable

    def clip_state_dict_key(self, clip_key: str) -> Optional[str]:
        """CLIP's text weights keep their names; CLIP's vision weights have no place here."""
        return None if clip_key.startswith("visual.") else clip_key
