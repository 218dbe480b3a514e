"""The fused path: one Triton launch forward, at most two backward (docs/kernel.md, "The fused path").

Covers D <= :data:`MAX_FUSED_DIM` (a block of rows and its accumulator live in registers);
larger D goes through the cuBLAS-GEMM path (:mod:`froster.ops._gemm_autograd`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
from torch.autograd.function import once_differentiable

from froster.ops._fused_kernels import fused_backward_rows_kernel, fused_backward_weights_kernel, fused_forward_kernel
from froster.ops._launch import device_guard, dot_precision, emulate_bf16, interpreting, ticket_counter
from froster.ops.reference import COSINE_EPS

MAX_FUSED_DIM = 1024
# Rows summed per step by the program that reduces the row losses.
_REDUCE_BLOCK = 1024
# Weight-gradient tiles: (BLOCK_HW, BLOCK_DW) of dw1, summed over BLOCK_N rows at a time.
_WEIGHT_TILE, _WEIGHT_ROWS = 64, 32
# Triton's interpreter pays per operation, not per element: larger tiles, fewer steps. Same
# arithmetic, summed in other groupings.
_INTERPRETER_ROWS, _INTERPRETER_H, _INTERPRETER_WEIGHT_TILE = 64, 128, 256


@dataclass(frozen=True)
class RowTiles:
    """Launch settings of the two row kernels (forward and backward rows)."""

    block_m: int
    block_d: int
    block_h: int
    num_warps: int
    num_stages: int

    def grid(self, n: int) -> tuple[int]:
        return (triton.cdiv(n, self.block_m),)


def row_tiles(n: int, d: int, dtype: torch.dtype) -> RowTiles | None:
    """Tiles for N rows of width D, or None when D is beyond the fused kernels.

    A program holds ``BLOCK_M`` full rows and their fp32 accumulator, and streams the weights
    through ``(BLOCK_D, BLOCK_H)`` tiles of about 32 KiB (at least 16 columns: 64 KiB for fp32 at
    D = 1024), two tiles per H step, double-buffered when they fit.
    """
    block_d = max(16, triton.next_power_of_2(d))
    if block_d > MAX_FUSED_DIM:
        return None
    element = torch.finfo(dtype).bits // 8
    block_h = min(64, max(16, 32768 // (block_d * element)))
    block_h = 1 << (block_h.bit_length() - 1)  # a power of two
    block_m = 16 if n <= 2048 or block_d > 512 else 32
    if interpreting():
        block_m = min(_INTERPRETER_ROWS, max(16, triton.next_power_of_2(n)))
        block_h = _INTERPRETER_H
    num_warps = 4 if block_m * block_d <= 8192 else 8
    num_stages = 2 if block_d * block_h * element <= 32768 else 1
    return RowTiles(block_m, block_d, block_h, num_warps, num_stages)


class FusedResidualProjectionLoss(torch.autograd.Function):
    """Autograd function of the fused op; inputs share one dtype and are contiguous."""

    @staticmethod
    def forward(ctx, z, t, w1, w2, b1, b2, alpha: float, is_cosine: bool, tiles: RowTiles):
        n, d = z.shape
        h = w1.shape[0]
        a = torch.empty((n, h), dtype=torch.float32, device=z.device)  # pre-activation, for backward
        g = torch.empty((n, d), dtype=torch.float32, device=z.device)  # d loss_row / d z'
        rows = torch.empty(n, dtype=torch.float32, device=z.device)
        loss = torch.empty((), dtype=torch.float32, device=z.device)
        with device_guard(z.device):
            fused_forward_kernel[tiles.grid(n)](
                z, t, w1, w2, b1 if b1 is not None else z, b2 if b2 is not None else z,
                a, g, rows, loss, ticket_counter(z.device),
                n, d, h, alpha, COSINE_EPS, 1.0 / n,
                HAS_B1=b1 is not None, HAS_B2=b2 is not None, IS_COSINE=is_cosine,
                EMULATE_BF16=emulate_bf16(z.dtype), DOT_PRECISION=dot_precision(z.dtype),
                BLOCK_M=tiles.block_m, BLOCK_D=tiles.block_d, BLOCK_H=tiles.block_h, BLOCK_R=_REDUCE_BLOCK,
                num_warps=tiles.num_warps, num_stages=tiles.num_stages,
            )
        ctx.save_for_backward(z, w1, w2, a, g)
        ctx.alpha, ctx.tiles = alpha, tiles
        ctx.has_bias = (b1 is not None, b2 is not None)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        z, w1, w2, a, g = ctx.saved_tensors
        need_z, _, need_w1, need_w2, need_b1, need_b2 = ctx.needs_input_grad[:6]
        need_b1, need_b2 = need_b1 and ctx.has_bias[0], need_b2 and ctx.has_bias[1]
        n, d = z.shape
        h = w1.shape[0]
        tiles, alpha = ctx.tiles, ctx.alpha
        scale = grad_output.reshape(1)  # stays on the device: no host sync
        emulate, precision = emulate_bf16(z.dtype), dot_precision(z.dtype)
        dz = torch.empty_like(z) if need_z else None
        dpre = torch.empty((n, h), dtype=z.dtype, device=z.device) if need_w1 or need_b1 else None
        dw1 = torch.empty_like(w1) if need_w1 else None
        dw2 = torch.empty_like(w2) if need_w2 else None
        db1 = torch.empty(h, dtype=z.dtype, device=z.device) if need_b1 else None
        db2 = torch.empty(d, dtype=z.dtype, device=z.device) if need_b2 else None
        with device_guard(z.device):
            if need_z or dpre is not None:
                fused_backward_rows_kernel[tiles.grid(n)](
                    g, a, w1, w2, scale, dpre if dpre is not None else a, dz if need_z else z,
                    n, d, h, alpha, 1.0 / n,
                    WRITE_DPRE=dpre is not None, WRITE_DZ=need_z, EMULATE_BF16=emulate, DOT_PRECISION=precision,
                    BLOCK_M=tiles.block_m, BLOCK_D=tiles.block_d, BLOCK_H=tiles.block_h,
                    num_warps=tiles.num_warps, num_stages=tiles.num_stages,
                )
            if need_w1 or need_w2 or need_b1 or need_b2:
                tile, block_n = (_INTERPRETER_WEIGHT_TILE, _INTERPRETER_ROWS) if interpreting() else (_WEIGHT_TILE, _WEIGHT_ROWS)
                block_hw = min(tile, max(16, triton.next_power_of_2(h)))
                block_dw = min(tile, max(16, triton.next_power_of_2(d)))
                fused_backward_weights_kernel[(triton.cdiv(h, block_hw), triton.cdiv(d, block_dw))](
                    z, g, a, dpre if dpre is not None else z, scale,
                    dw1 if need_w1 else w1, dw2 if need_w2 else w2, db1 if need_b1 else z, db2 if need_b2 else z,
                    n, d, h, alpha, 1.0 / n,
                    WRITE_DW1=need_w1, WRITE_DW2=need_w2, WRITE_DB1=need_b1, WRITE_DB2=need_b2,
                    EMULATE_BF16=emulate, DOT_PRECISION=precision,
                    BLOCK_N=block_n, BLOCK_HW=block_hw, BLOCK_DW=block_dw, num_warps=4,
                )
        return dz, None, dw1, dw2, db1, db2, None, None, None
