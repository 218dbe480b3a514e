"""What a student and a teacher must offer to be distilled by :class:`froster.ResidualDistiller`.

These are structural protocols: a model that has the methods works, with no subclassing and no
registration. Video tensors are (B, C, T, H, W) throughout the library.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, runtime_checkable

import torch

Tokenizer = Callable[[Sequence[str]], torch.Tensor]


@runtime_checkable
class VideoStudent(Protocol):
    """A trainable video-text model.

    Attributes:
        logit_scale: Learnable temperature in log space; logits are
            ``exp(logit_scale) * cos(video, text)``.

    Optional attributes the distiller uses when present:
        tokenizer: ``list[str] -> (K, L)`` token tensor for string prompts; without one, the
            teacher's tokenizer is used (the teacher is the CLIP the student started from).
        num_frames: Frame count the student was built for; other counts are refused early.
        classify: ``classify(frame_features, text_features, **head_inputs) -> (B, K)`` logits, for
            students whose head is more than cosine similarity of the mean feature. It receives
            the raw outputs of ``encode_video`` and ``encode_text``.
        encode_video_for_head: ``video -> VideoEncoding``, for students whose head needs more of
            the video than the features that are distilled (X-CLIP's prompt generator needs the
            patch tokens): the features plus named extra inputs that are handed to ``classify``.
            Nothing passes from one call to the next through the student's state.
    """

    logit_scale: torch.Tensor

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> per-frame features (B, T, D), or pooled features (B, D)."""
        ...

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) tokens -> (K, D) class text features."""
        ...


@dataclass
class VideoEncoding:
    """A video batch as a student's head sees it.

    Attributes:
        features: (B, T, D) per-frame or (B, D) pooled features: what the distiller distils.
        head_inputs: Extra tensors of the same videos for the student's own ``classify``
            (keyword arguments), e.g. X-CLIP's ``visual_tokens`` (B, N, D). Empty for most students.
    """

    features: torch.Tensor
    head_inputs: dict[str, torch.Tensor] = field(default_factory=dict)


def encode_video_for_head(student: object, video: torch.Tensor) -> VideoEncoding:
    """``student.encode_video_for_head(video)`` when it has it, else ``encode_video`` with no extra inputs."""
    method = getattr(student, "encode_video_for_head", None)
    if callable(method):
        encoding = method(video)
        if not isinstance(encoding, VideoEncoding):
            raise TypeError(f"{type(student).__name__}.encode_video_for_head must return a VideoEncoding, got {type(encoding).__name__}")
        return encoding
    return VideoEncoding(student.encode_video(video))  # type: ignore[attr-defined]


@runtime_checkable
class FrozenTeacher(Protocol):
    """A frozen image-text model that supplies distillation targets.

    Optional attribute: ``tokenizer`` (``list[str] -> (K, L)``), needed when prompts are strings.
    """

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> per-frame image features (B, T, D_t)."""
        ...

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) tokens -> (K, D_t) text features."""
        ...


def check_student(student: object) -> None:
    """Raise a ``TypeError`` naming what ``student`` lacks of :class:`VideoStudent`."""
    _check_members(student, "student", ("encode_video", "encode_text"), ("logit_scale",))


def check_teacher(teacher: object) -> None:
    """Raise a ``TypeError`` naming what ``teacher`` lacks of :class:`FrozenTeacher`."""
    _check_members(teacher, "teacher", ("encode_frames", "encode_text"), ())
    if not isinstance(teacher, torch.nn.Module):
        raise TypeError(
            f"teacher must be a torch.nn.Module, got {type(teacher).__name__}; wrap a model with "
            "encode_image/encode_text in froster.teachers.ModuleTeacher"
        )


def _check_members(obj: object, role: str, methods: tuple[str, ...], attributes: tuple[str, ...]) -> None:
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    missing += [a for a in attributes if not hasattr(obj, a)]
    if missing:
        raise TypeError(
            f"{role} of type {type(obj).__name__} does not offer the {role} protocol: "
            f"missing {', '.join(missing)} (see froster.protocols)"
        )
