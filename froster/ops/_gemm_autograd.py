"""The cuBLAS-GEMM path: the projector's GEMMs on cuBLAS, the element-wise work in Triton.

Used where the fused kernels do not reach (D > ``MAX_FUSED_DIM``, or a GPU without the resources
they need) and for ``path="gemm"``. Forward: 2 GEMMs and 2 Triton launches; backward: up to 4
GEMMs, 2 Triton launches and 2 bias sums::

    a  = z @ w1.T                       # (N, H)  cuBLAS
    h  = gelu(a + b1)                   # (N, H)  Triton, exact (erf) GELU
    p  = h @ w2.T                       # (N, D)  cuBLAS
    z' = z + alpha * (p + b2)           # (N, D)  Triton row kernel: row losses, fp32 g, mean

    gs   = s / N * g                    # (N, D)  Triton, fp32 until rounded once
    dpre = alpha * (gs @ w2) * gelu'(a + b1)          # (N, H)  GEMM + Triton
    dw2  = gs.T @ (alpha * gelu(a + b1))              # (D, H)  h recomputed by the same kernel
    dw1  = dpre.T @ z;  db1 = dpre.sum(0);  db2 = alpha * gs.sum(0)
    dz   = gs + dpre @ w1               # (N, D)  one addmm
"""
from __future__ import annotations

import torch
import triton
from torch.autograd.function import once_differentiable

from froster.ops._gemm_kernels import bias_gelu_bwd_kernel, bias_gelu_fwd_kernel, residual_loss_kernel, scale_kernel
from froster.ops._launch import device_guard, emulate_bf16, ticket_counter
from froster.ops.reference import COSINE_EPS

# Element-wise kernels: 1024 elements per program, 4 warps (memory bound; no autotuning).
_ELEMENTWISE_BLOCK = 1024
_REDUCE_BLOCK = 1024
# The row kernel holds BLOCK_M full rows; at most this many elements per program.
_MAX_ROW_ELEMENTS = 65536


def _grid(n_elements: int) -> tuple[int]:
    return (triton.cdiv(n_elements, _ELEMENTWISE_BLOCK),)


def _row_settings(d: int) -> tuple[int, int, int]:
    """Rows per program, padded D and warps of the row kernel."""
    block_d = max(16, triton.next_power_of_2(d))
    if block_d > _MAX_ROW_ELEMENTS:
        raise ValueError(f"feature dim D={d} is too large for the row kernel (max {_MAX_ROW_ELEMENTS})")
    block_m = max(1, min(16, 4096 // block_d))
    num_warps = 4 if block_m * block_d <= 4096 else 8 if block_m * block_d <= 16384 else 16
    return block_m, block_d, num_warps


class GemmResidualProjectionLoss(torch.autograd.Function):
    """Autograd function of the GEMM path; inputs share one dtype and are contiguous."""

    @staticmethod
    def forward(ctx, z, t, w1, w2, b1, b2, alpha: float, is_cosine: bool):
        n, d = z.shape
        emulate = emulate_bf16(z.dtype)
        with device_guard(z.device):
            a = torch.matmul(z, w1.t())  # (N, H)
            h = torch.empty_like(a)
            bias_gelu_fwd_kernel[_grid(a.numel())](
                a, b1 if b1 is not None else a, h, a.numel(), a.shape[1],
                HAS_BIAS=b1 is not None, EMULATE_BF16=emulate, BLOCK=_ELEMENTWISE_BLOCK,
            )
            p = torch.matmul(h, w2.t())  # (N, D)
            del h  # recomputed in backward
            g = torch.empty((n, d), dtype=torch.float32, device=z.device)
            rows = torch.empty(n, dtype=torch.float32, device=z.device)
            loss = torch.empty((), dtype=torch.float32, device=z.device)
            block_m, block_d, num_warps = _row_settings(d)
            residual_loss_kernel[(triton.cdiv(n, block_m),)](
                z, p, t, b2 if b2 is not None else p, g, rows, loss, ticket_counter(z.device),
                n, d, alpha, 1.0 / n, COSINE_EPS,
                HAS_BIAS=b2 is not None, IS_COSINE=is_cosine,
                BLOCK_M=block_m, BLOCK_D=block_d, BLOCK_R=_REDUCE_BLOCK, num_warps=num_warps,
            )
        ctx.save_for_backward(z, w1, w2, b1, a, g)
        ctx.alpha = alpha
        ctx.has_b2 = b2 is not None
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        z, w1, w2, b1, a, g = ctx.saved_tensors
        alpha, n = ctx.alpha, z.shape[0]
        emulate = emulate_bf16(z.dtype)
        need_z, _, need_w1, need_w2, need_b1, need_b2 = ctx.needs_input_grad[:6]
        dz = dw1 = dw2 = db1 = db2 = None
        with device_guard(z.device):
            gs = torch.empty(g.shape, dtype=z.dtype, device=z.device)  # (N, D): d loss / d z', scaled
            scale_kernel[_grid(g.numel())](
                g, grad_output.reshape(1), gs, g.numel(), 1.0 / n, EMULATE_BF16=emulate, BLOCK=_ELEMENTWISE_BLOCK
            )
            if need_b2 and ctx.has_b2:
                db2 = (gs.sum(0, dtype=torch.float32) * alpha).to(gs.dtype)  # (D,)
            if need_z or need_w1 or need_w2 or need_b1:
                dpre = torch.matmul(gs, w2)  # (N, H): dh / alpha, turned into dpre in place
                h_scaled = torch.empty_like(a) if need_w2 else None
                bias_gelu_bwd_kernel[_grid(a.numel())](
                    dpre, a, b1 if b1 is not None else a, h_scaled if need_w2 else a, a.numel(), a.shape[1], alpha,
                    HAS_BIAS=b1 is not None, WRITE_H=need_w2, EMULATE_BF16=emulate, BLOCK=_ELEMENTWISE_BLOCK,
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
