"""Fused residual-projection distillation loss: autograd function, module and functional form.

Computes the same value as ``froster.ops.residual_distill.residual_distill_loss_torch``::

    a  = z @ w1.T                       # (N, H)  cuBLAS
    h  = gelu(a + b1)                   # (N, H)  Triton, exact (erf) GELU
    p  = h @ w2.T                       # (N, D)  cuBLAS
    z' = z + alpha * (p + b2)           # (N, D)  Triton row kernel, which also writes the loss
    loss = mean_rows(1 - cos(z', t))    #         of each row and g = d loss / d z' over p
       or  mean_rows(||z' - t||_2)

and the backward pass from ``g`` (``s`` is grad_output)::

    gs   = s * g                        # (N, D)  d loss / d z'
    dpre = alpha * (gs @ w2) * gelu'(a + b1)          # (N, H)  GEMM + Triton
    dw2  = gs.T @ (alpha * gelu(a + b1))              # (D, H)  h recomputed by the same kernel
    dw1  = dpre.T @ z;  db1 = dpre.sum(0);  db2 = alpha * gs.sum(0)
    dz   = gs + dpre @ w1               # (N, D)  one addmm

Only ``z``, the weights, ``a`` and ``g`` are kept between the passes. Triton is an optional
dependency: this module imports it, ``froster.ops.residual_distill`` imports this module only for
``impl="triton"``. On CPU tensors the kernels run only under Triton's interpreter
(``TRITON_INTERPRET=1`` set before Triton is first imported), which is how the tests run them.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn
from torch.autograd.function import once_differentiable

try:
    import triton
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "impl='triton' needs the optional dependency triton: pip install 'froster-distill[triton]'"
    ) from err

from froster.ops._triton_residual_distill_kernels import (
    bias_gelu_bwd_kernel,
    bias_gelu_fwd_kernel,
    residual_loss_kernel,
    scale_kernel,
)
from froster.ops.residual_distill import COSINE_EPS, LossKind, _check_inputs

# Element-wise kernels: 1024 elements per program, 4 warps (memory bound; no autotuning, which
# the interpreter cannot run with several configs either).
_ELEMENTWISE_BLOCK = 1024
# One row per program: the whole row sits in registers, so D is bounded.
_MAX_ROW_BLOCK = 65536


def _row_settings(d: int) -> tuple[int, int]:
    """Block size (next power of two of D) and warp count of the row kernel."""
    block = triton.next_power_of_2(d)
    if block > _MAX_ROW_BLOCK:
        raise ValueError(f"feature dim D={d} is too large for the fused row kernel (max {_MAX_ROW_BLOCK})")
    num_warps = 4
    if block >= 2048:
        num_warps = 8
    if block >= 8192:
        num_warps = 16
    return block, num_warps


def _rne_bf16(out: torch.Tensor) -> bool:
    """Round bf16 outputs by hand under the interpreter, which truncates (the GPU rounds)."""
    return out.dtype == torch.bfloat16 and _interpreting()


def _elementwise_grid(n_elements: int) -> tuple[int]:
    return (triton.cdiv(n_elements, _ELEMENTWISE_BLOCK),)


class ResidualDistillFunction(torch.autograd.Function):
    """Autograd function of the fused loss; inputs must share one dtype and be contiguous."""

    @staticmethod
    def forward(ctx, z, t, w1, w2, b1, b2, alpha: float, is_cosine: bool):
        n, d = z.shape
        a = torch.matmul(z, w1.t())  # (N, H)
        h = torch.empty_like(a)
        bias_gelu_fwd_kernel[_elementwise_grid(a.numel())](
            a, b1 if b1 is not None else a, h, a.numel(), a.shape[1],
            HAS_BIAS=b1 is not None, RNE_BF16=_rne_bf16(a), BLOCK=_ELEMENTWISE_BLOCK,
        )
        g = torch.matmul(h, w2.t())  # (N, D): p, overwritten with g by the row kernel
        del h  # recomputed in backward
        loss_rows = torch.empty(n, dtype=torch.float32, device=z.device)
        block_d, num_warps = _row_settings(d)
        residual_loss_kernel[(n,)](
            z, g, t, b2 if b2 is not None else g, loss_rows, d, alpha, 1.0 / n, COSINE_EPS,
            HAS_BIAS=b2 is not None, IS_COSINE=is_cosine, RNE_BF16=_rne_bf16(g),
            BLOCK_D=block_d, num_warps=num_warps,
        )
        ctx.save_for_backward(z, w1, w2, b1, a, g)
        ctx.alpha = alpha
        ctx.has_b2 = b2 is not None
        return loss_rows.mean()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        z, w1, w2, b1, a, g = ctx.saved_tensors
        alpha = ctx.alpha
        need_z, _, need_w1, need_w2, need_b1, need_b2 = ctx.needs_input_grad[:6]
        dz = dw1 = dw2 = db1 = db2 = None

        gs = torch.empty_like(g)  # (N, D): d loss / d z', scaled by grad_output in fp32
        scale_kernel[_elementwise_grid(g.numel())](
            g, grad_output.reshape(1), gs, g.numel(), RNE_BF16=_rne_bf16(g), BLOCK=_ELEMENTWISE_BLOCK
        )
        if need_b2 and ctx.has_b2:
            db2 = (gs.sum(0, dtype=torch.float32) * alpha).to(gs.dtype)  # (D,)
        if need_z or need_w1 or need_w2 or need_b1:
            dpre = torch.matmul(gs, w2)  # (N, H): dh / alpha, turned into dpre in place
            h_scaled = torch.empty_like(a) if need_w2 else None
            bias_gelu_bwd_kernel[_elementwise_grid(a.numel())](
                dpre, a, b1 if b1 is not None else a, h_scaled if need_w2 else a, a.numel(),
                a.shape[1], alpha,
                HAS_BIAS=b1 is not None, WRITE_H=need_w2, RNE_BF16=_rne_bf16(a),
                BLOCK=_ELEMENTWISE_BLOCK,
            )
            if need_w2:
                dw2 = torch.matmul(gs.t(), h_scaled)  # (D, H)
            if need_w1:
                dw1 = torch.matmul(dpre.t(), z)  # (H, D)
            if need_b1 and b1 is not None:
                db1 = dpre.sum(0, dtype=torch.float32).to(dpre.dtype)  # (H,)
            if need_z:
                dz = gs.addmm_(dpre, w1)  # (N, D): gs is a temporary, reuse it
        return dz, None, dw1, dw2, db1, db2, None, None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _compute_dtype(z: torch.Tensor) -> torch.dtype:
    """The autocast dtype inside an autocast region of z's device, else z's own dtype."""
    if torch.is_autocast_enabled(z.device.type):
        return torch.get_autocast_dtype(z.device.type)
    return z.dtype


def residual_distill_loss_triton(
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
    """Fused residual-projection distillation loss (the functional form).

    Same arguments and value as ``residual_distill_loss_torch``. Inputs are cast to one compute
    dtype (z's, or the autocast dtype), the GEMMs accumulate in fp32 on cuBLAS and the fused
    kernels compute in fp32; gradients come back in each input's dtype.

    Args:
        z: Student features, (N, D).
        t: Teacher features, (N, D); receives no gradient.
        w1: (H, D) weight of the first projector layer.
        w2: (D, H) weight of the second projector layer.
        b1: Optional (H,) bias.
        b2: Optional (D,) bias.
        alpha: Weight of the residual branch.
        kind: ``"cosine"`` or ``"l2"``.

    Returns:
        The fp32 scalar loss averaged over the N rows.

    Raises:
        RuntimeError: On tensors off CUDA, unless Triton's interpreter is on.
    """
    _check_inputs(z, t, w1, w2, b1, b2, kind, "triton")
    devices = {x.device for x in (z, t, w1, w2, b1, b2) if x is not None}
    if len(devices) > 1:
        raise ValueError(f"all inputs must be on one device, got {sorted(map(str, devices))}")
    if not z.is_cuda and not _interpreting():
        raise RuntimeError(
            f"impl='triton' needs CUDA tensors, got tensors on {z.device}; use impl='torch' (or "
            "'auto') off GPU, or set TRITON_INTERPRET=1 before importing triton to run the kernels "
            "in Triton's CPU interpreter"
        )
    dtype = _compute_dtype(z)

    def prep(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        # The casts are recorded by autograd, so each gradient returns in its input's dtype.
        return None if x is None else x.to(dtype).contiguous()

    return ResidualDistillFunction.apply(
        prep(z), t.detach().contiguous(), prep(w1), prep(w2), prep(b1), prep(b2),
        float(alpha), kind == "cosine",
    )


class FusedResidualDistillLoss(nn.Module):
    """Module form of ``residual_distill_loss_triton``; holds ``alpha`` and ``kind``.

    The projector's parameters are passed to ``forward`` so that one module serves any
    projector (FROSTER has one for video and one for text features)::

        loss_fn = FusedResidualDistillLoss(alpha=0.1, kind="cosine")
        loss = loss_fn(z, t, proj.fc1.weight, proj.fc2.weight)
    """

    def __init__(self, alpha: float = 0.1, kind: LossKind = "cosine"):
        super().__init__()
        if kind not in ("cosine", "l2"):
            raise ValueError(f"kind must be 'cosine' or 'l2', got {kind!r}")
        self.alpha = float(alpha)
        self.kind = kind

    def forward(self, z, t, w1, w2, b1=None, b2=None) -> torch.Tensor:
        return residual_distill_loss_triton(z, t, w1, w2, b1, b2, alpha=self.alpha, kind=self.kind)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, kind={self.kind!r}"
