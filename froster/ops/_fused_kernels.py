"""Triton kernels of the fused residual-projection loss: one launch forward, two backward.

Both GEMMs of the projector run inside these kernels (``tl.dot``, fp32 accumulation); the math is
in docs/kernel.md and the autograd wiring in :mod:`froster.ops._fused_autograd`.

* :func:`fused_forward_kernel`, one program per ``BLOCK_M`` rows: ``a = z @ w1.T + b1`` and
  ``h = gelu(a)`` chunk by chunk of H, ``p += h @ w2.T``, then ``z' = z + alpha * (p + b2)``,
  the row losses, ``g = d loss_row / d z'`` (fp32) and the mean (by the last program).
* :func:`fused_backward_rows_kernel`, one program per ``BLOCK_M`` rows:
  ``gs = grad_output / N * g``, ``dpre = alpha * (gs @ w2) * gelu'(a)`` and
  ``dz = gs + dpre @ w1``.
* :func:`fused_backward_weights_kernel`, one program per (H, D) weight tile, each summing over
  all N rows in row order: ``dw1 = dpre.T @ z``, ``dw2 = gs.T @ (alpha * gelu(a))``,
  ``db1 = sum_rows dpre``, ``db2 = alpha * sum_rows gs``. No atomics: reproducible bits.

What crosses from forward to backward stays fp32: the pre-activation ``a`` (N, H) and ``g``
(N, D). ``g`` is stored before the loss scale and 1/N are applied, and the backward multiplies by
``grad_output / N`` in fp32 before rounding: a small ``g / N`` rounded to fp16 first would
underflow before a GradScaler's large ``grad_output`` could lift it. Operands entering ``tl.dot``
are rounded to the inputs' dtype, as eager torch's intermediates are.
"""
from __future__ import annotations

import triton
import triton.language as tl

from froster.ops._triton_math import (
    computed_operand,
    loaded_operand,
    mean_by_last_program,
    normal_cdf_pdf,
    row_loss_and_grad,
    store,
)


@triton.jit
def fused_forward_kernel(
    z_ptr, t_ptr, w1_ptr, w2_ptr, b1_ptr, b2_ptr,
    a_ptr, g_ptr, rows_ptr, loss_ptr, ticket_ptr,
    N, D, H, alpha, eps, inv_n,
    HAS_B1: tl.constexpr, HAS_B2: tl.constexpr, IS_COSINE: tl.constexpr,
    EMULATE_BF16: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_R: tl.constexpr,
):
    """Loss, row losses, ``a`` (N, H) fp32 and ``g = d loss_row / d z'`` (N, D) fp32."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    row_ok, col_ok = rows < N, cols < D
    block = row_ok[:, None] & col_ok[None, :]
    z = tl.load(z_ptr + rows[:, None] * D + cols[None, :], mask=block, other=0.0)  # (BM, BD)
    z_op = loaded_operand(z, EMULATE_BF16)
    p = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)  # h @ w2.T, accumulated over H
    for h0 in range(0, H, BLOCK_H):
        hs = h0 + tl.arange(0, BLOCK_H)
        h_ok = hs < H
        w1_t = tl.load(w1_ptr + hs[None, :] * D + cols[:, None], mask=col_ok[:, None] & h_ok[None, :], other=0.0)
        a = tl.dot(z_op, loaded_operand(w1_t, EMULATE_BF16), input_precision=DOT_PRECISION)  # (BM, BH)
        if HAS_B1:
            a += tl.load(b1_ptr + hs, mask=h_ok, other=0.0).to(tl.float32)[None, :]
        tl.store(a_ptr + rows[:, None] * H + hs[None, :], a, mask=row_ok[:, None] & h_ok[None, :])
        cdf, _ = normal_cdf_pdf(a)
        hidden = computed_operand(a * cdf, z_ptr, EMULATE_BF16)  # (BM, BH); 0 in padded columns
        w2_t = tl.load(w2_ptr + cols[None, :] * H + hs[:, None], mask=h_ok[:, None] & col_ok[None, :], other=0.0)
        p = tl.dot(hidden, loaded_operand(w2_t, EMULATE_BF16), p, input_precision=DOT_PRECISION)  # (BM, BD)
    if HAS_B2:
        p += tl.load(b2_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    zp = z.to(tl.float32) + alpha * p  # z' (BM, BD); padded columns are 0 and add nothing below
    t = tl.load(t_ptr + rows[:, None] * D + cols[None, :], mask=block, other=0.0).to(tl.float32)
    loss, g = row_loss_and_grad(zp, t, eps, IS_COSINE)
    tl.store(g_ptr + rows[:, None] * D + cols[None, :], g, mask=block)
    tl.store(rows_ptr + rows, loss, mask=row_ok)
    mean_by_last_program(rows_ptr, loss_ptr, ticket_ptr, N, inv_n, BLOCK_R)


@triton.jit
def fused_backward_rows_kernel(
    g_ptr, a_ptr, w1_ptr, w2_ptr, scale_ptr, dpre_ptr, dz_ptr,
    N, D, H, alpha, inv_n,
    WRITE_DPRE: tl.constexpr, WRITE_DZ: tl.constexpr,
    EMULATE_BF16: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr,
):
    """``dpre = alpha * (gs @ w2) * gelu'(a)`` (N, H) and ``dz = gs + dpre @ w1`` (N, D)."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    row_ok, col_ok = rows < N, cols < D
    block = row_ok[:, None] & col_ok[None, :]
    scale = tl.load(scale_ptr).to(tl.float32) * inv_n  # grad_output / N, read on the device
    gs = tl.load(g_ptr + rows[:, None] * D + cols[None, :], mask=block, other=0.0) * scale  # (BM, BD) fp32
    gs_op = computed_operand(gs, w1_ptr, EMULATE_BF16)
    dz = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    for h0 in range(0, H, BLOCK_H):
        hs = h0 + tl.arange(0, BLOCK_H)
        h_ok = hs < H
        rh = row_ok[:, None] & h_ok[None, :]
        w2 = tl.load(w2_ptr + cols[:, None] * H + hs[None, :], mask=col_ok[:, None] & h_ok[None, :], other=0.0)
        dh = tl.dot(gs_op, loaded_operand(w2, EMULATE_BF16), input_precision=DOT_PRECISION)  # (BM, BH)
        a = tl.load(a_ptr + rows[:, None] * H + hs[None, :], mask=rh, other=0.0)
        cdf, pdf = normal_cdf_pdf(a)
        dpre = computed_operand(alpha * dh * (cdf + a * pdf), w1_ptr, EMULATE_BF16)  # gelu' = Phi + x phi
        if WRITE_DPRE:
            tl.store(dpre_ptr + rows[:, None] * H + hs[None, :], dpre.to(dpre_ptr.dtype.element_ty), mask=rh)
        if WRITE_DZ:
            w1 = tl.load(w1_ptr + hs[:, None] * D + cols[None, :], mask=h_ok[:, None] & col_ok[None, :], other=0.0)
            dz = tl.dot(dpre, loaded_operand(w1, EMULATE_BF16), dz, input_precision=DOT_PRECISION)
    if WRITE_DZ:
        store(dz_ptr + rows[:, None] * D + cols[None, :], gs + dz, block, EMULATE_BF16)


@triton.jit
def fused_backward_weights_kernel(
    z_ptr, g_ptr, a_ptr, dpre_ptr, scale_ptr, dw1_ptr, dw2_ptr, db1_ptr, db2_ptr,
    N, D, H, alpha, inv_n,
    WRITE_DW1: tl.constexpr, WRITE_DW2: tl.constexpr, WRITE_DB1: tl.constexpr, WRITE_DB2: tl.constexpr,
    EMULATE_BF16: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_DW: tl.constexpr,
):
    """One (BLOCK_HW, BLOCK_DW) tile of ``dw1`` and its transpose tile of ``dw2``, plus the biases.

    Program (i, j) sums over the N rows in order; ``db1`` comes from the programs with j = 0,
    ``db2`` from those with i = 0.
    """
    hs = tl.program_id(0) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    ds = tl.program_id(1) * BLOCK_DW + tl.arange(0, BLOCK_DW)
    h_ok, d_ok = hs < H, ds < D
    scale = tl.load(scale_ptr).to(tl.float32) * inv_n
    dw1 = tl.zeros((BLOCK_HW, BLOCK_DW), dtype=tl.float32)
    dw2 = tl.zeros((BLOCK_DW, BLOCK_HW), dtype=tl.float32)
    db1 = tl.zeros((BLOCK_HW,), dtype=tl.float32)
    db2 = tl.zeros((BLOCK_DW,), dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        ns = n0 + tl.arange(0, BLOCK_N).to(tl.int64)
        n_ok = ns < N
        if WRITE_DW1 or WRITE_DB1:
            dpre_t = tl.load(dpre_ptr + ns[None, :] * H + hs[:, None], mask=h_ok[:, None] & n_ok[None, :], other=0.0)
            if WRITE_DW1:
                z = tl.load(z_ptr + ns[:, None] * D + ds[None, :], mask=n_ok[:, None] & d_ok[None, :], other=0.0)
                dw1 = tl.dot(loaded_operand(dpre_t, EMULATE_BF16), loaded_operand(z, EMULATE_BF16), dw1,
                             input_precision=DOT_PRECISION)  # (BHW, BN) @ (BN, BDW)
            if WRITE_DB1:
                db1 += tl.sum(dpre_t.to(tl.float32), axis=1)
        if WRITE_DW2 or WRITE_DB2:
            gs_t = tl.load(g_ptr + ns[None, :] * D + ds[:, None], mask=d_ok[:, None] & n_ok[None, :], other=0.0) * scale
            if WRITE_DW2:
                a = tl.load(a_ptr + ns[:, None] * H + hs[None, :], mask=n_ok[:, None] & h_ok[None, :], other=0.0)
                cdf, _ = normal_cdf_pdf(a)
                h_scaled = computed_operand(alpha * a * cdf, z_ptr, EMULATE_BF16)  # (BN, BHW)
                dw2 = tl.dot(computed_operand(gs_t, z_ptr, EMULATE_BF16), h_scaled, dw2,
                             input_precision=DOT_PRECISION)  # (BDW, BN) @ (BN, BHW)
            if WRITE_DB2:
                db2 += alpha * tl.sum(computed_operand(gs_t, z_ptr, EMULATE_BF16).to(tl.float32), axis=1)
    if WRITE_DW1:
        store(dw1_ptr + hs[:, None] * D + ds[None, :], dw1, h_ok[:, None] & d_ok[None, :], EMULATE_BF16)
    if WRITE_DW2:
        store(dw2_ptr + ds[:, None] * H + hs[None, :], dw2, d_ok[:, None] & h_ok[None, :], EMULATE_BF16)
    if WRITE_DB1:
        store(db1_ptr + hs, db1, h_ok & (tl.program_id(1) == 0), EMULATE_BF16)
    if WRITE_DB2:
        store(db2_ptr + ds, db2, d_ok & (tl.program_id(0) == 0), EMULATE_BF16)
