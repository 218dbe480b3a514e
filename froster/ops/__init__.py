"""Fused operators. Each op has a torch reference beside it, which is also its CPU path."""
from froster.ops.residual_distill import (
    residual_distill_loss,
    residual_distill_loss_torch,
    residual_projection,
)

__all__ = ["residual_distill_loss", "residual_distill_loss_torch", "residual_projection"]
