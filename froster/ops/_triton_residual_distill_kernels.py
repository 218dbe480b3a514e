"""Triton kernels of the fused residual-projection distillation loss.

The two GEMMs of the projector stay on cuBLAS; these kernels fuse the element-wise work around
them (see ``froster.ops.triton_residual_distill`` for the autograd wiring and docs/kernel.md for
the math):

* ``bias_gelu_fwd_kernel``: ``h = gelu(a + b1)`` after the first GEMM ``a = z @ w1.T``.
* ``residual_loss_kernel``: one program per row; ``z' = z + alpha * (p + b2)`` with
  ``p = h @ w2.T``, the row's loss, and ``d loss_row / d z'`` already divided by N, written over
  ``p`` so that the backward pass is only a scaling and GEMMs.
* ``bias_gelu_bwd_kernel``: ``dpre = alpha * dh * gelu'(a + b1)`` in place, and it recomputes
  ``alpha * gelu(a + b1)`` for the ``w2`` gradient, so ``h`` is not kept between the passes.
* ``scale_kernel``: ``out = x * grad_output`` with the scale read on the device, in fp32.

All arithmetic is fp32: inputs are upcast right after ``tl.load`` (this is also what keeps
bf16 right under Triton's CPU interpreter) and results are cast to the output pointer's type.
Triton's interpreter truncates fp32 to bf16 instead of rounding to nearest even as the GPU does;
with ``RNE_BF16`` the kernels round by hand first, so CPU tests see the GPU's bf16 numerics.

The exact GELU needs the normal CDF. ``tl.math.erf`` is a libdevice call that Triton's
interpreter cannot run, so ``_normal_cdf_pdf`` evaluates its own approximation: absolute error
about 6e-8 in fp32 (the same as ``0.5 * (1 + torch.erf(x / sqrt(2)))`` in fp32) and relative error
below 1e-5 in the negative tail, where the erf form loses all digits.
"""
from __future__ import annotations

import triton
import triton.language as tl

_SQRT1_2 = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)


@triton.jit
def _normal_cdf_pdf(x):
    """Standard normal ``Phi(x)`` and ``phi(x)``, elementwise in fp32.

    With ``u = |x| / sqrt(2)``: for ``u <= 1``, ``erf(u) = u + u * P(u^2)`` (a degree-7 fit of
    ``erf(u) / u - 1``; adding ``u`` last keeps the rounding at half an ulp); for ``u > 1``,
    ``erfc(u) = exp(-u^2) * Q((u - 3) / 2)`` with Q a degree-13 fit of ``erfcx`` on [1, 5]
    (beyond 5, ``erfc < 2e-12``: clamping Q's argument changes nothing visible). Both fits have
    an approximation error below 1e-8 when evaluated in fp64.
    """
    u = tl.abs(x) * 0.7071067811865476
    s = u * u
    e = tl.exp(-s)  # exp(-x^2 / 2): shared by the tail and the pdf
    p = -9.809352377487812e-06
    p = p * s + 0.00011313144204905257
    p = p * s - 0.0008490199106745422
    p = p * s + 0.005221423227339983
    p = p * s - 0.026865558698773384
    p = p * s + 0.11283784359693527
    p = p * s - 0.37612637877464294
    p = p * s + 0.12837916612625122
    erf_small = u + u * p
    v = (tl.minimum(u, 5.0) - 3.0) * 0.5
    q = -5.487909584189765e-05
    q = q * v + 0.00012113022239645943
    q = q * v - 9.077800496015698e-05
    q = q * v + 0.00020714825950562954
    q = q * v - 0.0006668439018540084
    q = q * v + 0.0013791675446555018
    q = q * v - 0.002672292059287429
    q = q * v + 0.005326144862920046
    q = q * v - 0.010374962352216244
    q = q * v + 0.019572073593735695
    q = q * v - 0.035835184156894684
    q = q * v + 0.06353727728128433
    q = q * v - 0.10874452441930771
    q = q * v + 0.17900115251541138
    # Phi(-|x|) = erfc(u) / 2; computing the tail directly keeps its relative precision.
    tail = tl.where(u <= 1.0, 0.5 - 0.5 * erf_small, 0.5 * e * q)
    cdf = tl.where(x >= 0, 1.0 - tail, tail)
    return cdf, e * 0.3989422804014327


@triton.jit
def _round_to_bf16(x):
    """fp32 values rounded to the nearest bf16 (ties to even), still as fp32."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _store(ptr, x, mask, RNE_BF16: tl.constexpr):
    if RNE_BF16:
        x = _round_to_bf16(x)
    tl.store(ptr, x.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def bias_gelu_fwd_kernel(
    a_ptr, b_ptr, h_ptr, n_elements, H,
    HAS_BIAS: tl.constexpr, RNE_BF16: tl.constexpr, BLOCK: tl.constexpr,
):
    """``h = gelu(a + b)`` over a contiguous (N, H) matrix; ``b`` is (H,)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        x += tl.load(b_ptr + offs % H, mask=mask, other=0.0).to(tl.float32)
    cdf, _ = _normal_cdf_pdf(x)
    _store(h_ptr + offs, x * cdf, mask, RNE_BF16)


@triton.jit
def bias_gelu_bwd_kernel(
    dh_ptr, a_ptr, b_ptr, h_ptr, n_elements, H, alpha,
    HAS_BIAS: tl.constexpr, WRITE_H: tl.constexpr, RNE_BF16: tl.constexpr, BLOCK: tl.constexpr,
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
    cdf, pdf = _normal_cdf_pdf(x)
    _store(dh_ptr + offs, alpha * dh * (cdf + x * pdf), mask, RNE_BF16)
    if WRITE_H:
        _store(h_ptr + offs, alpha * x * cdf, mask, RNE_BF16)


@triton.jit
def residual_loss_kernel(
    z_ptr, p_ptr, t_ptr, b_ptr, loss_ptr, D, alpha, inv_n, eps,
    HAS_BIAS: tl.constexpr, IS_COSINE: tl.constexpr, RNE_BF16: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """One row: ``z' = z + alpha * (p + b)``, its loss, and ``g = d(loss_row / N) / d z'`` over ``p``.

    cosine, with norms clamped as ``F.cosine_similarity`` does (the clamp is invisible to its
    autograd, and so here)::

        nz, nt = max(|z'|, eps), max(|t|, eps);  c = <z', t> / (nz * nt)
        loss = 1 - c;  g = -(t / (nz * nt) - c / nz * z' / |z'|) / N     (z' / |z'| = 0 at 0)

    l2::

        loss = |z' - t|;  g = (z' - t) / |z' - t| / N                       (0 at z' = t)
    """
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    mask = cols < D
    base = row * D
    z = tl.load(z_ptr + base + cols, mask=mask, other=0.0).to(tl.float32)
    p = tl.load(p_ptr + base + cols, mask=mask, other=0.0).to(tl.float32)
    t = tl.load(t_ptr + base + cols, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        p += tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    zp = z + alpha * p  # (BLOCK_D,); masked lanes are 0 and add nothing to the sums below
    if IS_COSINE:
        zn = tl.sqrt(tl.sum(zp * zp, axis=0))
        nz = tl.maximum(zn, eps)
        nt = tl.maximum(tl.sqrt(tl.sum(t * t, axis=0)), eps)
        cos = tl.sum(zp * t, axis=0) / (nz * nt)
        loss = 1.0 - cos
        inv_zn = tl.where(zn > 0, 1.0 / tl.where(zn > 0, zn, 1.0), 0.0)
        g = (cos / nz * inv_zn) * zp - t / (nz * nt)
    else:
        diff = zp - t
        dn = tl.sqrt(tl.sum(diff * diff, axis=0))
        loss = dn
        g = diff * tl.where(dn > 0, 1.0 / tl.where(dn > 0, dn, 1.0), 0.0)
    tl.store(loss_ptr + row, loss)
    _store(p_ptr + base + cols, g * inv_n, mask, RNE_BF16)


@triton.jit
def scale_kernel(x_ptr, s_ptr, out_ptr, n_elements, RNE_BF16: tl.constexpr, BLOCK: tl.constexpr):
    """``out = x * s[0]`` in fp32; ``s`` stays on the device (no host sync for grad_output)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    s = tl.load(s_ptr).to(tl.float32)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    _store(out_ptr + offs, x * s, mask, RNE_BF16)
