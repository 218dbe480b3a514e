"""``nn.MultiheadAttention`` with its projections as ``nn.Linear`` modules, so LoRA can wrap them.

``nn.MultiheadAttention`` keeps the q/k/v projection as a bare parameter (``in_proj_weight``) and
never calls its ``out_proj.forward``, so a LoRA layer hooked on either is ignored. peft 0.21 works
around this with a wrapper that merges the deltas into the weights before every forward; with
peft 0.21.2 that wrapper adds the ``out_proj`` delta twice (``W + 2 dW``), in the training forward
and in ``merge_and_unload`` alike, while the gradient only flows through one copy.

:class:`LinearMultiheadAttention` computes the same attention from two ``nn.Linear`` modules,
``in_proj`` (packed q/k/v) and ``out_proj``. peft wraps them as ordinary linear layers, whose
forward and merge are ``W + (alpha / r) B A`` exactly; ``out_proj`` alone can be targeted too.
:func:`unsplit_attention` packs them back into ``nn.MultiheadAttention`` after merging, so the
merged model is a plain open_clip model again.
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LinearMultiheadAttention", "split_attention", "unsplit_attention"]


class LinearMultiheadAttention(nn.Module):
    """Multi-head attention equal to ``nn.MultiheadAttention`` (packed q/k/v), built on ``nn.Linear``.

    Accepts the call of ``nn.MultiheadAttention`` that open_clip makes
    (``attn(q, k, v, need_weights=False, attn_mask=mask)``) and returns ``(output, None)``.

    Args:
        embed_dim: Width W of the tokens.
        num_heads: Attention heads; ``W`` must divide by it.
        dropout: Attention-probability dropout, active in training only.
        batch_first: Token layout, ``(N, L, W)`` when true, ``(L, N, W)`` otherwise.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, batch_first: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.in_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    @classmethod
    def from_mha(cls, mha: nn.MultiheadAttention) -> "LinearMultiheadAttention":
        """A copy of ``mha`` sharing its weight values (packed q/k/v, with biases, no bias_k/v)."""
        if not mha._qkv_same_embed_dim or mha.in_proj_bias is None or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("only nn.MultiheadAttention with packed q/k/v, biases, no bias_k/bias_v and no add_zero_attn can be split")
        new = cls(mha.embed_dim, mha.num_heads, mha.dropout, mha.batch_first).to(mha.in_proj_weight)
        with torch.no_grad():
            new.in_proj.weight.copy_(mha.in_proj_weight)
            new.in_proj.bias.copy_(mha.in_proj_bias)
            new.out_proj.weight.copy_(mha.out_proj.weight)
            new.out_proj.bias.copy_(mha.out_proj.bias)
        new.train(mha.training)
        return new

    def to_mha(self) -> nn.MultiheadAttention:
        """The equivalent ``nn.MultiheadAttention`` (the projections must be plain ``nn.Linear``)."""
        for name in ("in_proj", "out_proj"):
            if type(getattr(self, name)) is not nn.Linear:
                raise TypeError(f"{name} is a {type(getattr(self, name)).__name__}; merge or remove adapters first")
        mha = nn.MultiheadAttention(self.embed_dim, self.num_heads, dropout=self.dropout, batch_first=self.batch_first)
        mha = mha.to(self.in_proj.weight)
        with torch.no_grad():
            mha.in_proj_weight.copy_(self.in_proj.weight)
            mha.in_proj_bias.copy_(self.in_proj.bias)
            mha.out_proj.weight.copy_(self.out_proj.weight)
            mha.out_proj.bias.copy_(self.out_proj.bias)
        for param, source in zip(mha.parameters(), (self.in_proj.weight, self.in_proj.bias, self.out_proj.weight, self.out_proj.bias)):
            param.requires_grad_(source.requires_grad)
        mha.train(self.training)
        return mha

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        need_weights: bool = False,
        attn_mask: Optional[torch.Tensor] = None,
        key_padding_mask: Optional[torch.Tensor] = None,
        **unused,
    ) -> tuple[torch.Tensor, None]:
        """``softmax(q k^T / sqrt(d) + mask) v`` per head, then ``out_proj``; returns ``(output, None)``."""
        if need_weights or key_padding_mask is not None:
            raise ValueError("LinearMultiheadAttention supports neither need_weights=True nor key_padding_mask")
        if not self.batch_first:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        n, length, width = query.shape
        if key is query and value is query:  # self-attention: one projection for q, k and v
            q, k, v = self.in_proj(query).chunk(3, dim=-1)
        else:  # each input goes through the full projection, so LoRA sees every one of them
            q, k, v = (self.in_proj(x).chunk(3, dim=-1)[i] for i, x in enumerate((query, key, value)))
        heads = self.num_heads
        q, k, v = (x.reshape(n, x.shape[1], heads, width // heads).transpose(1, 2) for x in (q, k, v))  # (N, H, L, d)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=_sdpa_mask(attn_mask, n, heads, q.dtype), dropout_p=self.dropout if self.training else 0.0
        )  # (N, H, L, d)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, width))  # (N, L, W)
        return (out if self.batch_first else out.transpose(0, 1)), None


def _sdpa_mask(mask: Optional[torch.Tensor], batch: int, heads: int, dtype: torch.dtype) -> Optional[torch.Tensor]:
    # nn.MultiheadAttention: float masks are added to the logits, True in a bool mask forbids;
    # SDPA's bool masks mean the opposite, so bool masks become additive -inf masks.
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    if mask.dim() == 3:  # (N*H, L, S) -> (N, H, L, S)
        mask = mask.reshape(batch, heads, *mask.shape[1:])
    return mask.to(dtype)


def split_attention(model: nn.Module, names: Optional[Iterable[str]] = None) -> list[str]:
    """Replace ``nn.MultiheadAttention`` modules of ``model`` by :class:`LinearMultiheadAttention`, in place.

    Args:
        model: Any module.
        names: Module names to replace; ``None`` replaces every packed self-attention.

    Returns:
        The names replaced.
    """
    wanted = None if names is None else set(names)
    replaced = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.MultiheadAttention) and (wanted is None or name in wanted):
            model.set_submodule(name, LinearMultiheadAttention.from_mha(module))
            replaced.append(name)
    if wanted is not None and wanted - set(replaced):
        raise ValueError(f"not nn.MultiheadAttention modules of the model: {sorted(wanted - set(replaced))}")
    return replaced


def unsplit_attention(model: nn.Module) -> list[str]:
    """Replace every :class:`LinearMultiheadAttention` of ``model`` by ``nn.MultiheadAttention``, in place."""
    names = [name for name, module in model.named_modules() if isinstance(module, LinearMultiheadAttention)]
    for name in names:
        model.set_submodule(name, model.get_submodule(name).to_mha())
    return names
