"""Triton device functions shared by the fused and the GEMM-path kernels.

All arithmetic is fp32: inputs are upcast right after ``tl.load`` (this is also what keeps bf16
right under Triton's CPU interpreter) and results are cast to the output pointer's type.

Two interpreter quirks are handled here, both switched by the constexpr ``EMULATE_BF16`` (bf16
inputs under ``TRITON_INTERPRET=1``; never set on a GPU):

* the interpreter truncates fp32 to bf16 where the GPU rounds to nearest even: values are
  rounded by hand first (:func:`round_to_bf16`), so CPU tests see the GPU's bf16 numerics;
* its ``tl.dot`` on bf16 operands returns garbage: bf16-valued operands are kept in fp32 and
  multiplied with ``input_precision="ieee"``, which is what a tensor core computes (exact
  products of bf16 values, fp32 accumulation).

The exact GELU needs the normal CDF. ``tl.math.erf`` is a libdevice call that the interpreter
cannot run, so :func:`normal_cdf_pdf` evaluates its own approximation: absolute error about 6e-8
in fp32 (the same as ``0.5 * (1 + torch.erf(x / sqrt(2)))`` in fp32) and relative error below
1e-5 in the negative tail, where the erf form loses all digits.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def normal_cdf_pdf(x):
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
def round_to_bf16(x):
    """fp32 values rounded to the nearest bf16 (ties to even), still as fp32."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def store(ptr, x, mask, EMULATE_BF16: tl.constexpr):
    """Store fp32 ``x`` in the pointer's dtype, rounding to nearest even also in the interpreter."""
    if EMULATE_BF16:
        x = round_to_bf16(x)
    tl.store(ptr, x.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def loaded_operand(x, EMULATE_BF16: tl.constexpr):
    """A loaded input tile as a ``tl.dot`` operand: as is, or exact fp32 copies of bf16 values."""
    if EMULATE_BF16:
        return x.to(tl.float32)
    return x


@triton.jit
def computed_operand(x, like_ptr, EMULATE_BF16: tl.constexpr):
    """An fp32 intermediate rounded to the inputs' dtype (``like_ptr``'s) to enter ``tl.dot``.

    The same rounding eager torch applies when it stores the intermediate in that dtype.
    """
    if EMULATE_BF16:
        return round_to_bf16(x)
    return x.to(like_ptr.dtype.element_ty)


@triton.jit
def row_loss_and_grad(zp, t, eps, IS_COSINE: tl.constexpr):
    """Per-row loss and ``d loss_row / d z'`` of a (rows, D) block in fp32; zero columns add nothing.

    cosine, with norms clamped as ``F.cosine_similarity`` does (the clamp is invisible to its
    autograd, and so here)::

        nz, nt = max(|z'|, eps), max(|t|, eps);  c = <z', t> / (nz * nt)
        loss = 1 - c;  g = -(t / (nz * nt) - c / nz * z' / |z'|)      (z' / |z'| = 0 at 0)

    l2::

        loss = |z' - t|;  g = (z' - t) / |z' - t|                        (0 at z' = t)
    """
    if IS_COSINE:
        zn = tl.sqrt(tl.sum(zp * zp, axis=1))  # (rows,)
        nz = tl.maximum(zn, eps)
        nt = tl.maximum(tl.sqrt(tl.sum(t * t, axis=1)), eps)
        cos = tl.sum(zp * t, axis=1) / (nz * nt)
        inv_zn = tl.where(zn > 0, 1.0 / tl.where(zn > 0, zn, 1.0), 0.0)
        g = (cos / nz * inv_zn)[:, None] * zp - t / (nz * nt)[:, None]
        return 1.0 - cos, g
    diff = zp - t
    dn = tl.sqrt(tl.sum(diff * diff, axis=1))
    return dn, diff * tl.where(dn > 0, 1.0 / tl.where(dn > 0, dn, 1.0), 0.0)[:, None]


@triton.jit
def mean_by_last_program(rows_ptr, loss_ptr, ticket_ptr, N, inv_n, BLOCK_R: tl.constexpr):
    """``loss = sum(rows) / N`` written by whichever program finishes last, in a fixed order.

    Every program has stored its row losses; each then takes a ticket (one integer atomic, which
    only elects the last program and never touches a loss value). The program holding the last
    ticket sums all N row losses in row order and resets the ticket counter for the next launch
    on this stream. The sum's order never depends on scheduling: the loss is bit-reproducible
    run to run, as DDP replicas need.
    """
    tl.debug_barrier()  # every thread's row-loss stores are issued before the ticket is taken
    ticket = tl.atomic_add(ticket_ptr, 1, sem="acq_rel")
    if ticket == tl.num_programs(0) - 1:
        acc = tl.zeros((BLOCK_R,), dtype=tl.float32)
        for start in range(0, N, BLOCK_R):
            offs = start + tl.arange(0, BLOCK_R)
            # .cg: read from L2, where the other programs' stores are, never a stale L1 line.
            acc += tl.load(rows_ptr + offs, mask=offs < N, other=0.0, cache_modifier=".cg")
        tl.store(loss_ptr, tl.sum(acc, axis=0) * inv_n)
        tl.atomic_xchg(ticket_ptr, 0)
