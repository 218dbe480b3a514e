"""FROSTER: residual feature distillation from a frozen CLIP teacher (Huang et al., ICLR 2024).

>>> from froster import ResidualDistiller
>>> from froster.teachers import OpenCLIPTeacher
>>> teacher = OpenCLIPTeacher.from_pretrained("ViT-B-16", pretrained="openai")  # doctest: +SKIP
>>> distiller = ResidualDistiller(student, teacher, alpha=0.1, beta=2.0)         # doctest: +SKIP
"""
from froster.config import DistillConfig
from froster.distiller import DistillerOutput, ResidualDistiller
from froster.losses import residual_distill_loss, student_logits, video_text_logits
from froster.projector import ResidualProjector
from froster.protocols import FrozenTeacher, VideoStudent
from froster.registry import build_student, list_students, register_student

__version__ = "0.1.0"

__all__ = [
    "DistillConfig",
    "DistillerOutput",
    "FrozenTeacher",
    "ResidualDistiller",
    "ResidualProjector",
    "VideoStudent",
    "build_student",
    "list_students",
    "register_student",
    "residual_distill_loss",
    "student_logits",
    "video_text_logits",
]
