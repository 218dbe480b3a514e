"""FROSTER's losses in functional form, for users who compute features themselves.

:func:`residual_distill_loss` takes raw features and a :class:`ResidualProjector`; it normalises,
flattens and calls the op on prepared rows and raw weights,
:func:`froster.ops.residual_projection_loss`.
"""
from __future__ import annotations

from typing import Optional, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from froster.ops import residual_projection_loss
from froster.ops.reference import Impl, LossKind
from froster.projector import ResidualProjector
from froster.protocols import VideoStudent


def residual_distill_loss(
    student_feats: torch.Tensor,
    teacher_feats: torch.Tensor,
    projector: ResidualProjector,
    *,
    alpha: Optional[float] = None,
    kind: LossKind = "cosine",
    impl: Impl = "auto",
    to_teacher: Optional[nn.Linear] = None,
) -> torch.Tensor:
    """Residual feature distillation of FROSTER on features of any leading shape.

    ::

        z  = normalize(student_feats)               # (..., D_s), flattened to (N, D_s)
        z  = to_teacher(z) if to_teacher else z     # (N, D_t)
        t  = normalize(teacher_feats)               # (N, D_t)
        z' = z + alpha * fc2(gelu(fc1(z)))          # the projector, not re-normalised
        loss = mean(1 - cos(z', t))  or  mean(||z' - t||_2)

    Args:
        student_feats: Student features, (..., D_s).
        teacher_feats: Teacher features with the same leading shape, (..., D_t); no gradient
            flows into them.
        projector: The :class:`ResidualProjector` of this modality.
        alpha: Residual weight; the projector's own ``alpha`` when ``None``.
        kind: ``"cosine"`` or ``"l2"``.
        impl: ``"auto"``, ``"torch"`` or ``"triton"`` (see :func:`froster.ops.residual_projection_loss`).
        to_teacher: Optional learned map from the student's to the teacher's dimension.

    Returns:
        The fp32 scalar loss averaged over rows.
    """
    if student_feats.shape[:-1] != teacher_feats.shape[:-1]:
        raise ValueError(
            f"student_feats {tuple(student_feats.shape)} and teacher_feats {tuple(teacher_feats.shape)} "
            "must have the same leading (row) shape"
        )
    weight_dtype = projector.fc1.weight.dtype
    z = F.normalize(_at_least_fp32(student_feats), dim=-1).flatten(0, -2)  # (N, D_s)
    if to_teacher is not None:
        z = to_teacher(z.to(to_teacher.weight.dtype))  # (N, D_t)
    t = F.normalize(_at_least_fp32(teacher_feats.detach()), dim=-1).flatten(0, -2)  # (N, D_t)
    if z.shape[-1] != projector.dim or t.shape[-1] != projector.dim:
        raise ValueError(
            f"feature dims must equal the projector's dim {projector.dim}: student gives {z.shape[-1]}, "
            f"teacher gives {t.shape[-1]} (set project_to_teacher=True to map between them)"
        )
    return residual_projection_loss(
        z.to(weight_dtype),
        t.to(weight_dtype),
        projector.fc1.weight,
        projector.fc2.weight,
        projector.fc1.bias,
        projector.fc2.bias,
        alpha=projector.alpha if alpha is None else alpha,
        kind=kind,
        impl=impl,
    )


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    # Normalising half-precision features loses digits; fp64 features stay fp64.
    return x.to(torch.promote_types(x.dtype, torch.float32))


def video_text_logits(video_feats: torch.Tensor, text_feats: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """ViFi-CLIP's head: ``exp(logit_scale) * cos(mean_t video_feats, text_feats)``.

    Args:
        video_feats: Per-frame (B, T, D) or pooled (B, D) features.
        text_feats: (K, D) class text features.
        logit_scale: Temperature in log space.

    Returns:
        (B, K) logits.
    """
    video = video_feats.mean(dim=1) if video_feats.dim() == 3 else video_feats  # (B, D)
    video = F.normalize(video.float(), dim=-1)
    text = F.normalize(text_feats.float(), dim=-1)
    return logit_scale.float().exp() * video @ text.t()  # (B, K)


def student_logits(student: nn.Module, video_feats: torch.Tensor, text_feats: torch.Tensor, **head_inputs: torch.Tensor) -> torch.Tensor:
    """(B, K) logits from a student's raw features: its own ``classify`` head when it has one,
    else :func:`video_text_logits` with its ``logit_scale``.

    ``head_inputs`` are the extra inputs of the student's head
    (:attr:`froster.protocols.VideoEncoding.head_inputs`), passed to ``classify`` as keywords.
    """
    head = getattr(student, "classify", None)
    if callable(head):
        return head(video_feats, text_feats, **head_inputs)
    if head_inputs:
        raise TypeError(f"{type(student).__name__} has no classify head to take {sorted(head_inputs)}")
    return video_text_logits(video_feats, text_feats, cast(VideoStudent, student).logit_scale)
