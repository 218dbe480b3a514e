"""Configuration of the FROSTER distillation, saved with checkpoints as JSON."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal, Optional

from froster.ops.reference import IMPLS, LOSS_KINDS
from froster.validation import loads_json, require_bool, require_int, require_number

VIDEO_TARGETS = ("frames", "pooled")


@dataclass
class DistillConfig:
    """Hyper-parameters of :class:`froster.ResidualDistiller`.

    Attributes:
        alpha: Weight of the projector's residual branch, ``z' = z + alpha * proj(z)``.
        beta: Weight of the distillation terms, ``L = L_CE + beta * (L_video + L_text)``.
        kind: ``"cosine"`` (``1 - cos(z', t)``, the released code) or ``"l2"``
            (``||z' - t||_2``, the paper's Eq. 7). Which produced the paper's numbers is unknown.
        video_target: ``"frames"`` distils every frame (B*T rows, the released code);
            ``"pooled"`` distils the time-averaged feature (B rows, the paper's text).
        distill_video: Whether to distil the video features.
        distill_text: Whether to distil the class text features.
        hidden_dim: Projector hidden width; the feature dimension when ``None``.
        projector_bias: Biases in the projector layers (the reference has none).
        project_to_teacher: Learn a linear map from the student's feature dimension to the
            teacher's when they differ; without it a mismatch is an error.
        student_dim: The student's feature dimension, when the student has no ``embed_dim``.
        teacher_dim: The teacher's feature dimension, when the teacher has no ``embed_dim``.
        impl: Loss implementation, ``"auto"`` | ``"torch"`` | ``"triton"``.
        check_finite: Check every step that student and teacher features are finite and say
            which side is not (one host synchronisation per step).
    """

    alpha: float = 0.1
    beta: float = 2.0
    kind: Literal["cosine", "l2"] = "cosine"
    video_target: Literal["frames", "pooled"] = "frames"
    distill_video: bool = True
    distill_text: bool = True
    hidden_dim: Optional[int] = None
    projector_bias: bool = False
    project_to_teacher: bool = False
    student_dim: Optional[int] = None
    teacher_dim: Optional[int] = None
    impl: Literal["auto", "torch", "triton"] = "auto"
    check_finite: bool = True

    def __post_init__(self) -> None:
        # Checked here, so both DistillConfig(...) and ResidualDistiller(..., beta=...) refuse a
        # bad value before any module is built (FieldValueError is a ValueError).
        if self.kind not in LOSS_KINDS:
            raise ValueError(f"kind must be one of {LOSS_KINDS}, got {self.kind!r}")
        if self.video_target not in VIDEO_TARGETS:
            raise ValueError(f"video_target must be one of {VIDEO_TARGETS}, got {self.video_target!r}")
        if self.impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {self.impl!r}")
        require_number(self, "alpha")
        require_number(self, "beta")
        for name in ("hidden_dim", "student_dim", "teacher_dim"):
            require_int(self, name, optional=True)
        require_bool(self, ("distill_video", "distill_text", "projector_bias", "project_to_teacher", "check_finite"))

    def replace(self, **changes: Any) -> "DistillConfig":
        """A copy with ``changes``; unknown names raise a ``TypeError`` listing the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown DistillConfig field(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DistillConfig":
        return cls().replace(**values)

    @classmethod
    def from_json(cls, text: str) -> "DistillConfig":
        """From JSON text; ``NaN``/``Infinity`` and malformed JSON raise a ``ConfigError``."""
        return cls.from_dict(loads_json(text, "DistillConfig JSON"))
