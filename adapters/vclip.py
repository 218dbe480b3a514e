"""Open-VCLIP student: CLIP whose vision blocks let each frame attend to its neighbours.

Weng et al., "Open-VCLIP: Transforming CLIP to an Open-vocabulary Video Model via Interpolated
Weight Optimization", ICML 2023. In every ViT block, the queries of frame ``t`` attend to the
keys and values of frames ``t-1``, ``t`` and ``t+1`` (3x the tokens), computed with CLIP's own
attention weights. No parameter is added, so the student's state dict is CLIP's and any CLIP
checkpoint loads into it; in FROSTER the whole model, text tower included, is fine-tuned.

At the clip ends the missing neighbour is a block of zero keys and values, as in the released
code: those keys still take softmax weight (their logit is 0) and dilute the attention.
``clip_ends="mask"`` masks them out instead, which makes a 1-frame VCLIP exactly CLIP.
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

__all__ = ["VCLIP", "cross_frame_block", "CLIP_ENDS"]

CLIP_ENDS = ("zeros", "mask")


def _with_neighbours(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*T, H, N, d) keys or values -> (B*T, H, 3N, d): frame t-1, t, t+1, zeros past the ends."""
    bt, h, n, d = x.shape
    x = x.reshape(bt // num_frames, num_frames, h, n, d)  # (B, T, H, N, d)
    zeros = x.new_zeros(x[:, :1].shape)
    previous = torch.cat([zeros, x[:, :-1]], dim=1)  # frame t-1 at t
    following = torch.cat([x[:, 1:], zeros], dim=1)  # frame t+1 at t
    return torch.cat([previous, x, following], dim=3).reshape(bt, h, 3 * n, d)


def _neighbour_mask(batch: int, num_frames: int, tokens: int, device: torch.device) -> torch.Tensor:
    """Boolean (B*T, 1, 1, 3N) mask, True where a key exists (False for the padding past the ends)."""
    t = torch.arange(num_frames, device=device)
    valid = torch.stack([t > 0, torch.ones_like(t, dtype=torch.bool), t < num_frames - 1], dim=1)  # (T, 3)
    valid = valid.repeat_interleave(tokens, dim=1)  # (T, 3N)
    return valid.repeat(batch, 1).view(batch * num_frames, 1, 1, 3 * tokens)


def cross_frame_block(block: nn.Module, x: torch.Tensor, num_frames: int, clip_ends: str = "zeros") -> torch.Tensor:
    """Run an open_clip ``ResidualAttentionBlock`` with Open-VCLIP's neighbour-frame attention.

    Same computation as ``block(x)`` except that the keys and values of each frame are those of
    frames ``t-1, t, t+1``::

        q, k, v = split(ln_1(x) @ in_proj_weight.T + in_proj_bias)        # (B*T, H, N, d)
        k, v = cat([k[t-1], k[t], k[t+1]]), cat([v[t-1], v[t], v[t+1]])   # (B*T, H, 3N, d)
        x = x + ls_1(out_proj(softmax(q k^T / sqrt(d) + mask) v))
        x = x + ls_2(mlp(ln_2(x)))

    Args:
        block: An open_clip ``ResidualAttentionBlock`` (``nn.MultiheadAttention`` inside).
        x: Tokens (B*T, N, W), the frames of each video consecutive.
        num_frames: T.
        clip_ends: ``"zeros"`` (zero keys/values for the missing neighbour, which keep softmax
            weight, as released) or ``"mask"`` (the missing neighbour is not attended).

    Returns:
        Tokens (B*T, N, W).
    """
    if clip_ends not in CLIP_ENDS:
        raise ValueError(f"clip_ends must be one of {CLIP_ENDS}, got {clip_ends!r}")
    attn: nn.MultiheadAttention = block.attn
    bt, n, width = x.shape
    heads = attn.num_heads
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (y.reshape(bt, n, heads, width // heads).transpose(1, 2) for y in (q, k, v))  # (B*T, H, N, d)
    k, v = _with_neighbours(k, num_frames), _with_neighbours(v, num_frames)  # (B*T, H, 3N, d)
    mask = _neighbour_mask(bt // num_frames, num_frames, n, x.device) if clip_ends == "mask" else None
    dropout = attn.dropout if attn.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)  # (B*T, H, N, d)
    out = attn.out_proj(out.transpose(1, 2).reshape(bt, n, width))
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _check_blocks(blocks: nn.ModuleList) -> None:
    for i, block in enumerate(blocks):
        missing = [name for name in ("ln_1", "attn", "ls_1", "ln_2", "mlp", "ls_2") if not hasattr(block, name)]
        if missing or not isinstance(block.attn, nn.MultiheadAttention) or block.attn.in_proj_weight is None:
            raise ValueError(
                f"vclip needs open_clip ResidualAttentionBlocks with a packed nn.MultiheadAttention; vision "
                f"block {i} is {type(block).__name__} (missing {missing or 'a packed in_proj_weight'}). "
                "Configs with qk_norm/scaled_cosine_attn use another block type."
            )


@register_student("vclip")
class VCLIP(ClipVideoStudent):
    """Open-VCLIP student: neighbour-frame attention in every vision block, no new parameters.

    Args:
        clip: open_clip model name or CLIP instance.
        pretrained: open_clip tag or local CLIP weights file.
        num_frames: Frame count T of the videos.
        clip_ends: ``"zeros"`` (released behaviour) or ``"mask"``; see :func:`cross_frame_block`.
        tokenizer: Tokenizer override.
        **clip_overrides: open_clip config overrides (``embed_dim``, ``vision_cfg``, ...).
    """

    def __init__(
        self,
        clip: Union[str, nn.Module] = "ViT-B-16",
        pretrained: Optional[PathLike] = None,
        num_frames: int = 8,
        *,
        clip_ends: str = "zeros",
        tokenizer=None,
        **clip_overrides,
    ):
        if clip_ends not in CLIP_ENDS:
            raise ValueError(f"clip_ends must be one of {CLIP_ENDS}, got {clip_ends!r}")
        super().__init__(clip, pretrained, num_frames, tokenizer=tokenizer, **clip_overrides)
        _check_blocks(self.vision_blocks)
        self.clip_ends = clip_ends

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B*T, C, H, W) frames of consecutive videos -> (B*T, D); frames interact within a video."""
        x = self.embed_images(images)  # (B*T, N, W)
        use_checkpoint = self.visual.transformer.grad_checkpointing and torch.is_grad_enabled()
        for block in self.vision_blocks:
            if use_checkpoint:
                x = checkpoint(cross_frame_block, block, x, self.num_frames, self.clip_ends, use_reentrant=False)
            else:
                x = cross_frame_block(block, x, self.num_frames, self.clip_ends)
        return self.pool_tokens(x)  # (B*T, D)

    def classify(self, frame_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Open-VCLIP's head: the mean over frames of per-frame logits.

        ``logits[b, k] = mean_t exp(logit_scale) * cos(frame_features[b, t], text_features[k])``.
        """
        frames = F.normalize(frame_features, dim=-1)  # (B, T, D)
        text = F.normalize(text_features, dim=-1)  # (K, D)
        return self.logit_scale.exp() * torch.einsum("btd,kd->btk", frames, text).mean(dim=1)  # (B, K)

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, clip_ends={self.clip_ends!r}"
