"""FROSTER: residual feature distillation from a frozen CLIP teacher (Huang et al., ICLR 2024)."""
from froster.registry import build_student, list_students, register_student

__version__ = "0.1.0"
