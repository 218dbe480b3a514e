"""``residual_projection_loss``: the op on prepared rows, with an explicit implementation choice.

The torch reference lives in :mod:`froster.ops.reference`, the fused Triton op in
:mod:`froster.ops.triton_residual_projection`; this module chooses between them and imports the
Triton one only when it is used, so ``import froster`` never imports Triton.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch

from froster.ops.reference import Impl, LossKind, check_inputs, residual_projection_loss_torch

# Whether ``import triton`` failed, and why; set on the first CUDA call with impl="auto".
_TRITON_IMPORT_ERROR: Optional[str] = None
_TRITON_CHECKED = False


def residual_projection_loss(
    z: torch.Tensor,
    t: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    b1: Optional[torch.Tensor] = None,
    b2: Optional[torch.Tensor] = None,
    *,
    alpha: float = 0.1,
    kind: LossKind = "cosine",
    impl: Impl = "auto",
) -> torch.Tensor:
    """Loss of the residual projection of rows ``z`` against teacher rows ``t``::

        z' = z + alpha * (gelu(z @ w1.T + b1) @ w2.T + b2)
        loss = mean_rows(1 - cos(z', t))   or   mean_rows(||z' - t||_2)

    The rows are used as given: :func:`froster.residual_distill_loss` is the form that takes raw
    features of any shape and a :class:`~froster.ResidualProjector`, normalises and flattens.

    Args:
        z: Student rows, (N, D).
        t: Teacher rows, (N, D); receives no gradient.
        w1: (H, D) weight of the first projector layer.
        w2: (D, H) weight of the second projector layer.
        b1: Optional (H,) bias.
        b2: Optional (D,) bias.
        alpha: Weight of the residual branch.
        kind: ``"cosine"`` (``1 - cos``) or ``"l2"`` (Euclidean distance).
        impl: ``"torch"`` runs the reference, ``"triton"`` the fused kernels (CUDA, or the Triton
            interpreter), ``"auto"`` Triton on CUDA tensors and torch elsewhere. When Triton cannot
            be imported, ``"auto"`` on CUDA warns once, naming the import error, and uses torch.

    Returns:
        The fp32 scalar loss averaged over the N rows.
    """
    check_inputs(z, t, w1, w2, b1, b2, kind, impl)
    if impl == "auto":
        impl = "triton" if z.is_cuda and triton_importable() else "torch"
    if impl == "torch":
        return residual_projection_loss_torch(z, t, w1, w2, b1, b2, alpha=alpha, kind=kind)
    from froster.ops.triton_residual_projection import residual_projection_loss_triton

    return residual_projection_loss_triton(z, t, w1, w2, b1, b2, alpha=alpha, kind=kind)


def triton_importable() -> bool:
    """Whether Triton imports; the first failure is reported once as a warning with its cause."""
    global _TRITON_CHECKED, _TRITON_IMPORT_ERROR
    if not _TRITON_CHECKED:
        _TRITON_CHECKED = True
        try:
            import triton  # noqa: F401
        except ImportError as err:
            _TRITON_IMPORT_ERROR = f"{type(err).__name__}: {err}"
            warnings.warn(
                f"froster: impl='auto' runs the torch reference of the residual-projection loss on CUDA because "
                f"triton cannot be imported ({_TRITON_IMPORT_ERROR}); pip install 'froster-distill[triton]' for the "
                "fused kernels, or pass impl='torch' to silence this",
                RuntimeWarning,
                stacklevel=3,
            )
    return _TRITON_IMPORT_ERROR is None
