"""Residual-projection loss in plain torch: the reference of the fused op and its CPU path.

FROSTER (Huang et al., ICLR 2024) pulls a *residual projection* of the student feature toward the
frozen teacher's feature instead of the student feature itself::

    h  = gelu(z @ w1.T + b1)                  # (N, H)
    z' = z + alpha * (h @ w2.T + b2)          # (N, D)
    loss = mean_rows(1 - cos(z', t))          # kind="cosine"
    loss = mean_rows(||z' - t||_2)            # kind="l2"

This module imports nothing else from ``froster.ops``: the dispatcher
(:mod:`froster.ops.dispatch`) and the Triton host code (:mod:`froster.ops.triton_residual_projection`)
both build on it, and neither imports the other at module level.
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F

LossKind = Literal["cosine", "l2"]
Impl = Literal["auto", "torch", "triton"]

LOSS_KINDS = ("cosine", "l2")
IMPLS = ("auto", "torch", "triton")

# Row norms are clamped at this value, so zero rows give a finite loss and zero gradient.
COSINE_EPS = 1e-8


def residual_projection(
    z: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    b1: Optional[torch.Tensor] = None,
    b2: Optional[torch.Tensor] = None,
    *,
    alpha: float = 0.1,
) -> torch.Tensor:
    """``z' = z + alpha * (gelu(z @ w1.T + b1) @ w2.T + b2)`` with exact (erf) GELU.

    Args:
        z: Student features, (N, D).
        w1: First layer weight, (H, D) as in ``nn.Linear``.
        w2: Second layer weight, (D, H).
        b1: Optional first layer bias, (H,).
        b2: Optional second layer bias, (D,).
        alpha: Weight of the residual branch.

    Returns:
        The projected features, (N, D), in the dtype of ``z``.
    """
    hidden = F.gelu(F.linear(z, w1, b1))  # (N, H)
    return z + alpha * F.linear(hidden, w2, b2)  # (N, D)


def distance_to_teacher(z_proj: torch.Tensor, t: torch.Tensor, kind: LossKind) -> torch.Tensor:
    """Row-averaged distance between projected student rows and teacher rows, in fp32 or wider.

    ``cosine``: ``mean(1 - <z', t> / (max(|z'|, eps) * max(|t|, eps)))``;
    ``l2``: ``mean(||z' - t||_2)``.
    """
    # Half-precision inputs are reduced in fp32; fp64 inputs (references, gradchecks) stay fp64.
    accumulate = torch.promote_types(z_proj.dtype, torch.float32)
    z_proj, t = z_proj.to(accumulate), t.to(accumulate)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(z_proj, t, dim=-1, eps=COSINE_EPS)).mean()
    return torch.linalg.vector_norm(z_proj - t, dim=-1).mean()


def residual_projection_loss_torch(
    z: torch.Tensor,
    t: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    b1: Optional[torch.Tensor] = None,
    b2: Optional[torch.Tensor] = None,
    *,
    alpha: float = 0.1,
    kind: LossKind = "cosine",
) -> torch.Tensor:
    """The loss in eager torch ops; same signature and value as the fused Triton op."""
    return distance_to_teacher(residual_projection(z, w1, w2, b1, b2, alpha=alpha), t, kind)


def check_inputs(z, t, w1, w2, b1, b2, kind: str, impl: str) -> None:
    """Shapes, kind and impl of a residual-projection loss call; errors name the argument."""
    if kind not in LOSS_KINDS:
        raise ValueError(f"kind must be one of {LOSS_KINDS}, got {kind!r}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if z.dim() != 2:
        raise ValueError(f"z must be 2-D (N, D), got shape {tuple(z.shape)}")
    n, d = z.shape
    if t.shape != z.shape:
        raise ValueError(f"t must have the shape of z {tuple(z.shape)}, got {tuple(t.shape)}")
    if w1.dim() != 2 or w1.shape[1] != d:
        raise ValueError(f"w1 must be (H, {d}), got {tuple(w1.shape)}")
    h = w1.shape[0]
    if tuple(w2.shape) != (d, h):
        raise ValueError(f"w2 must be ({d}, {h}), got {tuple(w2.shape)}")
    if b1 is not None and tuple(b1.shape) != (h,):
        raise ValueError(f"b1 must be ({h},), got {tuple(b1.shape)}")
    if b2 is not None and tuple(b2.shape) != (d,):
        raise ValueError(f"b2 must be ({d},), got {tuple(b2.shape)}")
    if n == 0:
        raise ValueError("z has no rows: the mean over rows of an empty batch is undefined")
