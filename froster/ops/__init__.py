"""Fused operators, each with its torch reference beside it (also its CPU path).

* :func:`residual_projection_loss`: FROSTER's residual-projection loss on prepared rows and the
  projector's raw weights, ``impl="auto" | "torch" | "triton"``.
* :func:`residual_projection_loss_torch`: its reference; :func:`residual_projection`: the
  projection alone (what :class:`froster.ResidualProjector` computes).

The Triton form (:mod:`froster.ops.triton_residual_projection`) is imported only when used.
"""
from froster.ops.dispatch import residual_projection_loss
from froster.ops.reference import IMPLS, LOSS_KINDS, residual_projection, residual_projection_loss_torch

__all__ = ["IMPLS", "LOSS_KINDS", "residual_projection", "residual_projection_loss", "residual_projection_loss_torch"]
