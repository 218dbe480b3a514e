"""The residual projector of FROSTER: ``z' = z + alpha * W2 GELU(W1 z)``."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from froster.ops import residual_projection


class ResidualProjector(nn.Module):
    """Two linear layers with an exact GELU between them, added to the input with weight ``alpha``.

    With ``fc2`` zero-initialised the projector starts as the identity, so distillation begins by
    pulling the student feature itself toward the teacher; the residual branch then learns to
    absorb the part of the teacher's signal that conflicts with video-specific learning.

    Args:
        dim: Feature dimension D (input and output).
        hidden_dim: Width H of the hidden layer; D when ``None`` (the reference setting).
        alpha: Weight of the residual branch (0.1 in the paper).
        bias: Whether the linear layers have biases (the reference has none).
    """

    def __init__(self, dim: int, hidden_dim: Optional[int] = None, alpha: float = 0.1, bias: bool = False):
        super().__init__()
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        hidden_dim = dim if hidden_dim is None else hidden_dim
        if hidden_dim <= 0:
            raise ValueError(f"hidden_dim must be positive, got {hidden_dim}")
        self.dim, self.hidden_dim, self.alpha = dim, hidden_dim, float(alpha)
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.fc1.weight)
        nn.init.zeros_(self.fc2.weight)
        for layer in (self.fc1, self.fc2):
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D)."""
        return residual_projection(z, self.fc1.weight, self.fc2.weight, self.fc1.bias, self.fc2.bias, alpha=self.alpha)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden_dim={self.hidden_dim}, alpha={self.alpha}"
