"""Triton kernels of the cuBLAS-GEMM path, for feature widths beyond the fused kernels.

The two GEMMs of the projector stay on cuBLAS; these kernels fuse the element-wise work around
them (see :mod:`froster.ops._gemm_autograd` for the wiring and docs/kernel.md for the math):

* ``bias_gelu_fwd_kernel``: ``h = gelu(a + b1)`` after the first GEMM ``a = z @ w1.T``.
* ``residual_loss_kernel``: ``BLOCK_M`` rows per program; ``z' = z + alpha * (p + b2)`` with
  ``p = h @ w2.T``, the row losses, ``g = d loss_row / d z'`` in an fp32 buffer, and the mean.
* ``scale_kernel``: ``gs = g * grad_output / N`` in fp32, rounded once to the output's dtype.
* ``bias_gelu_bwd_kernel``: ``dpre = alpha * dh * gelu'(a + b1)`` in place, and it recomputes
  ``alpha * gelu(a + b1)`` for the ``w2`` gradient, so ``h`` is not kept between the passes.
"""
from __future__ import annotations

import triton
import triton.language as tl

from froster.ops._triton_math import mean_by_last_program, normal_cdf_pdf, row_loss_and_grad, store


@triton.jit
def bias_gelu_fwd_kernel(
    a_ptr, b_ptr, h_ptr, n_elements, H,
    HAS_BIAS: tl.constexpr, EMULATE_BF16: tl.constexpr, BLOCK: tl.constexpr,
):
    """``h = gelu(a + b)`` over a contiguous (N, H) matrix; ``b`` is (H,)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        x += tl.load(b_ptr + offs % H, mask=mask, other=0.0).to(tl.float32)
    cdf, _ = normal_cdf_pdf(x)
    store(h_ptr + offs, x * cdf, mask, EMULATE_BF16)


@triton.jit
def bias_gelu_bwd_kernel(
    dh_ptr, a_ptr, b_ptr, h_ptr, n_elements, H, alpha,
    HAS_BIAS: tl.constexpr, WRITE_H: tl.constexpr, EMULATE_BF16: tl.constexpr, BLOCK: tl.constexpr,
):
    """In place ``dh <- alpha * dh * gelu'(a + b)``; if ``WRITE_H``, ``h <- alpha * gelu(a + b)``.

    ``gelu'(x) = Phi(x) + x * phi(x)``.
    """
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        x += tl.load(b_ptr + offs % H, mask=mask, other=0.0).to(tl.float32)
    dh = tl.load(dh_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    cdf, pdf = normal_cdf_pdf(x)
    store(dh_ptr + offs, alpha * dh * (cdf + x * pdf), mask, EMULATE_BF16)
    if WRITE_H:
        store(h_ptr + offs, alpha * x * cdf, mask, EMULATE_BF16)


@triton.jit
def residual_loss_kernel(
    z_ptr, p_ptr, t_ptr, b_ptr, g_ptr, rows_ptr, loss_ptr, ticket_ptr, N, D, alpha, inv_n, eps,
    HAS_BIAS: tl.constexpr, IS_COSINE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr,
):
    """``BLOCK_M`` rows: ``z' = z + alpha * (p + b)``, row losses, fp32 ``g``, and the mean."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    row_ok = rows < N
    block = row_ok[:, None] & (cols < D)[None, :]
    offs = rows[:, None] * D + cols[None, :]
    z = tl.load(z_ptr + offs, mask=block, other=0.0).to(tl.float32)
    p = tl.load(p_ptr + offs, mask=block, other=0.0).to(tl.float32)
    t = tl.load(t_ptr + offs, mask=block, other=0.0).to(tl.float32)
    if HAS_BIAS:
        p += tl.load(b_ptr + cols, mask=cols < D, other=0.0).to(tl.float32)[None, :]
    loss, g = row_loss_and_grad(z + alpha * p, t, eps, IS_COSINE)
    tl.store(g_ptr + offs, g, mask=block)
    tl.store(rows_ptr + rows, loss, mask=row_ok)
    mean_by_last_program(rows_ptr, loss_ptr, ticket_ptr, N, inv_n, BLOCK_R)


@triton.jit
def scale_kernel(x_ptr, s_ptr, out_ptr, n_elements, inv_n, EMULATE_BF16: tl.constexpr, BLOCK: tl.constexpr):
    """``out = x * s[0] / N`` in fp32; ``s`` stays on the device (no host sync for grad_output)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    s = tl.load(s_ptr).to(tl.float32) * inv_n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    store(out_ptr + offs, x * s, mask, EMULATE_BF16)
