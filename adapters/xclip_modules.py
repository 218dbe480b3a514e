"""X-CLIP's three additions to CLIP: cross-frame messages, frame integration, video prompts.

Ni et al., "Expanding Language-Image Pretrained Models for General Video Recognition", ECCV 2022.

* :class:`CrossFrameBlock`: an open_clip ViT block whose frames exchange one message token each;
* :class:`MultiframeIntegration`: a small transformer over the frame features, residual, mean;
* :class:`VideoPromptGenerator`: text features cross-attend to the video's visual tokens and the
  result, scaled by a learnable ``alpha``, is added to the text features.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, ResidualAttentionBlock

__all__ = ["CrossFrameBlock", "MultiframeIntegration", "VideoPromptGenerator", "PromptGeneratorLayer", "init_new_weights"]

_BLOCK_PARTS = ("ln_1", "attn", "ls_1", "ln_2", "mlp", "ls_2")


def init_new_weights(module: nn.Module) -> None:
    """X-CLIP's initialisation of the modules it adds: linear layers N(0, 0.02) truncated, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CrossFrameBlock(nn.Module):
    """An open_clip ``ResidualAttentionBlock`` with X-CLIP's cross-frame communication.

    Each frame's class token becomes a message (``message_fc``), the T messages of a video attend
    to each other (``message_attn``, pre-norm, residual), and each frame's message is appended to
    that frame's tokens for the block's self-attention, then dropped::

        m = message_fc(x[:, 0])                                   # (B, T, W)
        m = m + message_attn(message_ln(m))                       # across the T frames
        y = cat([x, m], tokens) ; y = y + ls_1(attn(ln_1(y)))     # (B*T, N+1, W)
        x = y[:, :N] ; x = x + ls_2(mlp(ln_2(x)))

    Frames of a video meet only through the messages. The CLIP block's modules are adopted under
    their own names, so CLIP's keys are unchanged and the message modules come beside them.

    Args:
        block: The CLIP block (``ln_1, attn, ls_1, ln_2, mlp, ls_2``, ``nn.MultiheadAttention``).
        num_frames: Frames per video T; the batch holds the frames of each video consecutively.
    """

    def __init__(self, block: nn.Module, num_frames: int):
        super().__init__()
        missing = [name for name in _BLOCK_PARTS if not hasattr(block, name)]
        if missing or not isinstance(block.attn, nn.MultiheadAttention):
            raise ValueError(
                f"xclip needs open_clip ResidualAttentionBlocks with nn.MultiheadAttention, got {type(block).__name__} "
                f"(missing {missing or 'an nn.MultiheadAttention attn'})"
            )
        for name, child in block.named_children():
            self.add_module(name, child)
        width, heads = block.attn.embed_dim, block.attn.num_heads
        self.num_frames = num_frames
        self.message_fc = nn.Linear(width, width)
        self.message_ln = type(block.ln_1)(width)  # the block's norm class (open_clip's casts for fp16)
        self.message_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        init_new_weights(self.message_fc)

    def messages(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (B*T, N, W) -> one message per frame (B*T, 1, W), mixed across each video's frames."""
        bt, _, width = x.shape
        m = self.message_fc(x[:, 0]).reshape(bt // self.num_frames, self.num_frames, width)  # (B, T, W)
        y = self.message_ln(m)
        m = m + self.message_attn(y, y, y, need_weights=False)[0]  # (B, T, W)
        return m.reshape(bt, 1, width)

    def _self_attention(self, x: torch.Tensor) -> torch.Tensor:
        if not self.attn.batch_first:
            x = x.transpose(0, 1)
        out = self.attn(x, x, x, need_weights=False)[0]
        return out if self.attn.batch_first else out.transpose(0, 1)

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Tokens (B*T, N, W) -> (B*T, N, W)."""
        if attn_mask is not None:
            raise ValueError("CrossFrameBlock is a vision block and takes no attention mask")
        n = x.shape[1]
        x = torch.cat([x, self.messages(x)], dim=1)  # (B*T, N+1, W)
        x = x + self.ls_1(self._self_attention(self.ln_1(x)))
        x = x[:, :n]  # (B*T, N, W): the message has done its work
        return x + self.ls_2(self.mlp(self.ln_2(x)))


class MultiframeIntegration(nn.Module):
    """X-CLIP's multi-frame integration transformer: frame features (B, T, D) -> video feature (B, D).

    ``video = mean_t(frames + blocks(frames + position_embedding))``: the blocks only add a
    residual, so with their output at zero the video feature is the mean frame feature.

    Args:
        num_frames: T, the length of the temporal position embedding.
        dim: Feature dimension D.
        layers: Transformer blocks (CLIP blocks, QuickGELU).
        heads: Attention heads; ``max(1, D // 64)`` by default, as in X-CLIP.
    """

    def __init__(self, num_frames: int, dim: int, layers: int = 1, heads: Optional[int] = None):
        super().__init__()
        heads = heads or max(1, dim // 64)
        self.position_embedding = nn.Parameter(torch.empty(1, num_frames, dim))
        self.blocks = nn.Sequential(*[ResidualAttentionBlock(dim, heads, act_layer=QuickGELU) for _ in range(layers)])
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        init_new_weights(self)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, D)."""
        x = self.blocks(frames + self.position_embedding.to(frames.dtype))  # (B, T, D)
        return (x.to(frames.dtype) + frames).mean(dim=1)


class PromptGeneratorLayer(nn.Module):
    """Pre-norm cross-attention from text (queries) to visual tokens (keys, values), then an MLP."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"prompt generator dim={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.ln_1 = nn.LayerNorm(dim)
        # X-CLIP's cross-attention has no q/k/v biases.
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.out_proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(dim, 4 * dim)),
            ("gelu", QuickGELU()),
            ("drop", nn.Dropout(dropout)),
            ("c_proj", nn.Linear(4 * dim, dim)),
        ]))
        self.dropout = nn.Dropout(dropout)

    def cross_attention(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """``out_proj(softmax(q k^T / sqrt(d)) v)`` per head; text (B, K, D), visual (B, N, D) -> (B, K, D)."""
        b, k, d = text.shape
        q = self.q_proj(text).reshape(b, k, self.heads, d // self.heads).transpose(1, 2)  # (B, H, K, d)
        key, value = (p(visual).reshape(b, visual.shape[1], self.heads, d // self.heads).transpose(1, 2) for p in (self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, key, value)  # (B, H, K, d)
        return self.out_proj(out.transpose(1, 2).reshape(b, k, d))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        text = text + self.cross_attention(self.ln_1(text), visual)
        return text + self.dropout(self.mlp(self.ln_2(text)))


class VideoPromptGenerator(nn.Module):
    """X-CLIP's video-specific prompting: ``prompt = alpha * layers(text, visual_ln(visual))``.

    The caller adds the prompt to the text features: ``text + prompt`` (per video, (B, K, D)).

    Args:
        dim: Feature dimension D (CLIP's embedding dimension).
        layers: Cross-attention layers.
        alpha: Initial value of the per-channel scale; small, so training starts near CLIP.
        heads: Attention heads; ``max(1, D // 64)`` by default.
        dropout: Dropout in the layers.
    """

    def __init__(self, dim: int, layers: int = 2, alpha: float = 0.1, heads: Optional[int] = None, dropout: float = 0.0):
        super().__init__()
        heads = heads or max(1, dim // 64)
        self.visual_ln = nn.LayerNorm(dim)
        self.layers = nn.ModuleList([PromptGeneratorLayer(dim, heads, dropout) for _ in range(layers)])
        self.alpha = nn.Parameter(torch.full((dim,), float(alpha)))
        init_new_weights(self)

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Text (B, K, D) and visual tokens (B, N, D) -> the prompt (B, K, D) to add to the text."""
        visual = self.visual_ln(visual)
        for layer in self.layers:
            text = layer(text, visual)
        return self.alpha * text
