"""Residual-projection loss in Triton: the functional form and the module.

Same value as :func:`froster.ops.reference.residual_projection_loss_torch`, computed by one of two
autograd functions, chosen from the shapes (``path="auto"``):

* ``"fused"`` (:mod:`froster.ops._fused_autograd`): both GEMMs inside the Triton kernels; one
  launch forward, two backward (one with a frozen projector). Feature widths D up to 1024.
* ``"gemm"`` (:mod:`froster.ops._gemm_autograd`): cuBLAS GEMMs with fused element-wise Triton
  kernels between them; any D.

Triton is an optional dependency: this module imports it, :mod:`froster.ops.dispatch` imports this
module only for ``impl="triton"`` (or ``"auto"`` on CUDA). On CPU tensors the kernels run only
under Triton's interpreter (``TRITON_INTERPRET=1`` set before Triton is first imported), which is
how the tests run them.
"""
from __future__ import annotations

import warnings
from typing import Literal, Optional

import torch
from torch import nn

try:
    from triton.runtime.errors import OutOfResources
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "impl='triton' needs the optional dependency triton: pip install 'froster-distill[triton]'"
    ) from err

from froster.ops._fused_autograd import FusedResidualProjectionLoss, row_tiles
from froster.ops._gemm_autograd import GemmResidualProjectionLoss
from froster.ops._launch import interpreting
from froster.ops.reference import LOSS_KINDS, LossKind, check_inputs

Path = Literal["auto", "fused", "gemm"]
PATHS = ("auto", "fused", "gemm")

# (device type, dtype, padded D) for which the fused kernels did not fit this GPU's resources.
_FUSED_TOO_BIG: set[tuple] = set()


def _compute_dtype(z: torch.Tensor) -> torch.dtype:
    """The autocast dtype inside an autocast region of z's device, else z's own dtype."""
    if torch.is_autocast_enabled(z.device.type):
        return torch.get_autocast_dtype(z.device.type)
    return z.dtype


def residual_projection_loss_triton(
    z: torch.Tensor,
    t: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    b1: Optional[torch.Tensor] = None,
    b2: Optional[torch.Tensor] = None,
    *,
    alpha: float = 0.1,
    kind: LossKind = "cosine",
    path: Path = "auto",
) -> torch.Tensor:
    """Fused residual-projection loss (the functional form).

    Same arguments and value as ``residual_projection_loss_torch``. Inputs are cast to one compute
    dtype (z's, or the autocast dtype); products accumulate in fp32, the loss and what the
    backward pass needs from the forward pass stay fp32, and gradients come back in each input's
    dtype. Launches run on the inputs' device, whichever device is current.

    Args:
        z: Student rows, (N, D).
        t: Teacher rows, (N, D); receives no gradient.
        w1: (H, D) weight of the first projector layer.
        w2: (D, H) weight of the second projector layer.
        b1: Optional (H,) bias.
        b2: Optional (D,) bias.
        alpha: Weight of the residual branch.
        kind: ``"cosine"`` or ``"l2"``.
        path: ``"fused"``, ``"gemm"`` or ``"auto"`` (fused wherever it applies).

    Returns:
        The fp32 scalar loss averaged over the N rows.

    Raises:
        RuntimeError: On tensors off CUDA, unless Triton's interpreter is on.
        ValueError: Bad shapes, inputs on several devices, an unknown path, or ``path="fused"``
            for a D beyond the fused kernels.
    """
    check_inputs(z, t, w1, w2, b1, b2, kind, "triton")
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    devices = {x.device for x in (z, t, w1, w2, b1, b2) if x is not None}
    if len(devices) > 1:
        raise ValueError(f"all inputs must be on one device, got {sorted(map(str, devices))}")
    if not z.is_cuda and not interpreting():
        raise RuntimeError(
            f"impl='triton' needs CUDA tensors, got tensors on {z.device}; use impl='torch' (or "
            "'auto') off GPU, or set TRITON_INTERPRET=1 before importing triton to run the kernels "
            "in Triton's CPU interpreter"
        )
    dtype = _compute_dtype(z)

    def prep(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        # The casts are recorded by autograd, so each gradient returns in its input's dtype.
        return None if x is None else x.to(dtype).contiguous()

    args = (prep(z), t.detach().contiguous(), prep(w1), prep(w2), prep(b1), prep(b2), float(alpha), kind == "cosine")
    tiles = row_tiles(z.shape[0], z.shape[1], dtype)
    if path == "fused" and tiles is None:
        raise ValueError(f"path='fused' covers feature dims up to 1024, got D={z.shape[1]}; use path='gemm' or 'auto'")
    too_big = (z.device.type, dtype, tiles.block_d if tiles else None) in _FUSED_TOO_BIG
    if path == "gemm" or tiles is None or (path == "auto" and too_big):
        return GemmResidualProjectionLoss.apply(*args)
    try:
        return FusedResidualProjectionLoss.apply(*args, tiles)
    except OutOfResources as err:
        if path == "fused":
            raise
        _FUSED_TOO_BIG.add((z.device.type, dtype, tiles.block_d))
        warnings.warn(f"froster: the fused residual-projection kernels do not fit this GPU at D={z.shape[1]} "
                      f"{dtype} ({err}); using the cuBLAS-GEMM path", RuntimeWarning, stacklevel=2)
        return GemmResidualProjectionLoss.apply(*args)


class ResidualProjectionLoss(nn.Module):
    """Module form of :func:`residual_projection_loss_triton`; holds ``alpha`` and ``kind``.

    The projector's parameters are passed to ``forward`` so that one module serves any
    projector (FROSTER has one for video and one for text features)::

        loss_fn = ResidualProjectionLoss(alpha=0.1, kind="cosine")
        loss = loss_fn(z, t, proj.fc1.weight, proj.fc2.weight)
    """

    def __init__(self, alpha: float = 0.1, kind: LossKind = "cosine"):
        super().__init__()
        if kind not in LOSS_KINDS:
            raise ValueError(f"kind must be one of {LOSS_KINDS}, got {kind!r}")
        self.alpha = float(alpha)
        self.kind = kind

    def forward(self, z, t, w1, w2, b1=None, b2=None) -> torch.Tensor:
        return residual_projection_loss_triton(z, t, w1, w2, b1, b2, alpha=self.alpha, kind=self.kind)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, kind={self.kind!r}"
