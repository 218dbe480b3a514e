"""ResidualDistiller: FROSTER's residual feature distillation around any student and teacher.

Huang et al., "FROSTER: Frozen CLIP Is A Strong Teacher for Open-Vocabulary Action Recognition",
ICLR 2024. The loss of one step is::

    L = CE(logits(student video, student text), labels)
        + beta * (L_fd(video projector(student frames), teacher frames)
                  + L_fd(text projector(student text), teacher text))

with L_fd from :func:`froster.losses.residual_distill_loss`. The classification uses the student's
features *before* the projectors, so the projectors learn only from distillation and are dropped
at inference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from froster.config import DistillConfig
from froster.losses import residual_distill_loss, student_logits
from froster.projector import ResidualProjector
from froster.protocols import FrozenTeacher, VideoStudent, check_student, check_teacher, encode_video_for_head
from froster.text import ensemble_features
from froster.teachers.text_cache import TextFeatureCache, prompt_key
from froster.validation import check_finite, check_labels, check_prompts, check_student_video, check_tokens

Prompts = Union[torch.Tensor, Sequence[str]]
# One prompt set, or several prompt sets of the same classes to be ensembled.
PromptSets = Union[Prompts, Sequence[Prompts]]

logger = logging.getLogger(__name__)


@dataclass
class DistillerOutput:
    """What one forward pass of :class:`ResidualDistiller` returns.

    Attributes:
        loss: The weighted sum ``ce_loss + beta * (video_distill_loss + text_distill_loss)``.
        logits: (B, K) class logits of the student.
        losses: Every unweighted term, keys ending in ``_loss``; log them all.
    """

    loss: torch.Tensor
    logits: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)


class ResidualDistiller(nn.Module):
    """Wraps a trainable student and a frozen teacher and computes FROSTER's loss.

    The teacher is held outside the module tree: it is not among ``parameters()`` (so neither
    the optimiser nor DDP sees it), not in ``state_dict()`` (checkpoints hold student and
    projectors; the teacher reloads from its source), never receives gradients and stays in eval
    mode. ``.to()``/``.cuda()``/``.half()`` still move it along with the student.

    Args:
        student: Any module offering :class:`froster.protocols.VideoStudent`.
        teacher: Any module offering :class:`froster.protocols.FrozenTeacher`.
        config: Hyper-parameters; keyword arguments override its fields
            (``ResidualDistiller(student, teacher, alpha=0.1, beta=2.0, kind="cosine")``).
    """

    # Both are modules offering their protocol (checked in __init__); nn.Module.__getattr__ types
    # the protocol's methods as `Tensor | Module`, so calls to them go through the protocol types.
    student: nn.Module
    teacher: nn.Module

    def __init__(self, student: nn.Module, teacher: nn.Module, config: Optional[DistillConfig] = None, **overrides):
        super().__init__()
        check_student(student)
        check_teacher(teacher)
        self.config = (config or DistillConfig()).replace(**overrides)
        self.student = student
        # Stored outside nn.Module's registries on purpose: see the class docstring.
        self.__dict__["teacher"] = teacher
        teacher.requires_grad_(False)
        teacher.eval()

        # The projectors live in the teacher's space; the student's width only matters where it
        # differs, which the first forward checks when the student does not say it.
        teacher_dim = _teacher_dim(teacher, self.config.teacher_dim)
        student_dim = self.config.student_dim or getattr(student, "embed_dim", None)
        self.teacher_dim = teacher_dim
        self.to_teacher: Optional[nn.Linear] = None
        if student_dim is not None and int(student_dim) != teacher_dim and not self.config.project_to_teacher:
            raise ValueError(_width_mismatch(int(student_dim), teacher_dim))
        if self.config.project_to_teacher:
            if student_dim is None:
                raise ValueError(
                    f"project_to_teacher=True builds a map from the student's feature width, but {type(student).__name__} "
                    "has no embed_dim attribute; pass student_dim=<its feature width>"
                )
            self.to_teacher = nn.Linear(int(student_dim), teacher_dim, bias=False)
            # Semi-orthogonal: the map starts norm-preserving (student dim <= teacher dim) or a
            # projection onto orthonormal directions (student dim > teacher dim).
            nn.init.orthogonal_(self.to_teacher.weight)

        def projector() -> ResidualProjector:
            return ResidualProjector(teacher_dim, self.config.hidden_dim, self.config.alpha, self.config.projector_bias)

        self.video_projector = projector() if self.config.distill_video else None
        self.text_projector = projector() if self.config.distill_text else None
        self.teacher_text_cache = TextFeatureCache()
        # Tokenizing K prompts costs milliseconds on the host every step; the prompt sets repeat.
        self._student_tokens = TextFeatureCache()
        self._said_tokenizer = False

    def load_projectors(self, source) -> None:
        """Restore the residual projectors of a released FROSTER checkpoint.

        Args:
            source: ``student.checkpoint_report`` of a student built with ``checkpoint=`` (or a
                :class:`~froster.adapters.checkpoints.CheckpointReport`), or its
                ``projector_state`` dict (``video_projector.fc1.weight``, ...).

        Raises:
            ValueError: The state names no projector, names one this distiller does not have, or
                holds weights of another shape.
        """
        state = getattr(source, "projector_state", source)
        if not state:
            raise ValueError("no projector weights to load (the checkpoint carries none: Open-VCLIP's files have no projectors)")
        own = {k: v for k, v in self.state_dict().items() if k.startswith(("video_projector.", "text_projector."))}
        unknown = sorted(set(state) - set(own))
        shapes = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items() if k in own and v.shape != own[k].shape]
        if unknown or shapes:
            raise ValueError(f"projector weights do not fit this distiller: unknown {unknown}, shape mismatch {shapes}")
        self.load_state_dict(dict(state), strict=False)

    # -- module plumbing -------------------------------------------------------------------------

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        self.teacher._apply(fn)
        # Cached features live on the old device / dtype.
        self.teacher_text_cache.clear()
        self._student_tokens.clear()
        return self

    # -- forward ---------------------------------------------------------------------------------

    def forward(self, video: torch.Tensor, prompts: PromptSets, labels: Optional[torch.Tensor] = None) -> DistillerOutput:
        """One training step's losses.

        Args:
            video: (B, C, T, H, W) normalised frames, the same tensor for student and teacher.
            prompts: K class prompts, as one prompt set (a list of strings, tokenized by each side,
                or a (K, L) token tensor shared by both) or several prompt sets of the same K
                classes (a list of such sets, e.g. :func:`froster.text.training_prompt_sets`),
                whose text features are ensembled on each side (:func:`froster.text.ensemble_features`).
            labels: (B,) class indices; without them no cross-entropy term is computed.
        """
        sets, num_classes = _prompt_sets(prompts)
        check_student_video(self.student, video)
        if labels is not None:
            check_labels(labels, video.shape[0], num_classes)
        if self.teacher.training:
            self.teacher.eval()

        encoding = encode_video_for_head(self.student, video)
        student_video = encoding.features  # (B, T, D) or (B, D)
        student_text = self._student_text(sets)  # (K, D)
        _check_student_outputs(student_video, student_text, video, num_classes)
        self._check_width(student_video)
        features = {"student video features": student_video, "student text features": student_text}

        losses: dict[str, torch.Tensor] = {}
        logits = student_logits(self.student, student_video, student_text, **encoding.head_inputs)
        if labels is not None:
            losses["ce_loss"] = F.cross_entropy(logits.float(), labels.long())
        if self.video_projector is not None:
            with torch.no_grad():
                teacher_frames = cast(FrozenTeacher, self.teacher).encode_frames(video)  # (B, T, D_t)
            features["teacher frame features"] = teacher_frames
            student_rows, teacher_rows = self._video_rows(student_video, teacher_frames)
            losses["video_distill_loss"] = self._distill(student_rows, teacher_rows, self.video_projector)
        if self.text_projector is not None:
            teacher_text = ensemble_features([self._teacher_text(s) for s in sets])  # (K, D_t)
            features["teacher text features"] = teacher_text
            losses["text_distill_loss"] = self._distill(student_text, teacher_text, self.text_projector)
        if self.config.check_finite:
            check_finite(features)

        distill = [v for k, v in losses.items() if k != "ce_loss"]
        loss = losses.get("ce_loss", logits.new_zeros((), dtype=torch.float32))
        if distill:
            loss = loss + self.config.beta * torch.stack(distill).sum()
        return DistillerOutput(loss=loss, logits=logits, losses=losses)

    @torch.no_grad()
    def predict(self, video: torch.Tensor, prompts: PromptSets) -> torch.Tensor:
        """(B, K) logits of the student alone: the teacher and projectors play no part."""
        sets, _ = _prompt_sets(prompts)
        check_student_video(self.student, video)
        encoding = encode_video_for_head(self.student, video)
        return student_logits(self.student, encoding.features, self._student_text(sets), **encoding.head_inputs)

    # -- pieces ----------------------------------------------------------------------------------

    def _video_rows(self, student_video: torch.Tensor, teacher_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows compared by the video distillation: B*T frames, or B time-averaged videos."""
        if teacher_frames.dim() != 3 or teacher_frames.shape[0] != student_video.shape[0]:
            raise ValueError(f"teacher.encode_frames must return (B, T, D_t), got {tuple(teacher_frames.shape)}")
        if self.config.video_target == "pooled" or student_video.dim() == 2:
            pooled = student_video.mean(dim=1) if student_video.dim() == 3 else student_video
            return pooled, teacher_frames.mean(dim=1)  # (B, D), (B, D_t)
        if student_video.shape[1] != teacher_frames.shape[1]:
            raise ValueError(
                f"per-frame distillation needs as many student frames as teacher frames: student gives "
                f"{student_video.shape[1]}, teacher {teacher_frames.shape[1]}; use video_target='pooled'"
            )
        return student_video, teacher_frames  # (B, T, D), (B, T, D_t)

    def _distill(self, student_feats: torch.Tensor, teacher_feats: torch.Tensor, projector: ResidualProjector) -> torch.Tensor:
        return residual_distill_loss(
            student_feats,
            teacher_feats,
            projector,
            kind=self.config.kind,
            impl=self.config.impl,
            to_teacher=self.to_teacher,
        )

    def _check_width(self, student_video: torch.Tensor) -> None:
        width = student_video.shape[-1]
        expected = self.to_teacher.in_features if self.to_teacher is not None else self.teacher_dim
        if width != expected:
            if self.to_teacher is not None:
                raise ValueError(f"student features have width {width} but project_to_teacher was built for student_dim={expected}")
            raise ValueError(_width_mismatch(width, self.teacher_dim))

    def _student_text(self, sets: list[Prompts]) -> torch.Tensor:
        """(K, D) student text features of the prompt sets, ensembled."""
        student = cast(VideoStudent, self.student)
        return ensemble_features([student.encode_text(self._tokens_for_student(s)) for s in sets])

    def _tokens_for_student(self, prompts: Prompts) -> torch.Tensor:
        device = cast(VideoStudent, self.student).logit_scale.device
        if isinstance(prompts, torch.Tensor):  # moved like the teacher's, so CPU tokens work on any device
            return check_tokens(prompts, {"student": self.student, "teacher": self.teacher}).to(device)
        tokenizer = getattr(self.student, "tokenizer", None)
        if tokenizer is None:
            tokenizer = getattr(self.teacher, "tokenizer", None)
            if tokenizer is None:
                raise TypeError("prompts are strings but neither the student nor the teacher has a tokenizer; pass (K, L) token tensors")
            if not self._said_tokenizer:
                # In FROSTER the teacher is the CLIP the student started from: same vocabulary.
                logger.info("%s has no tokenizer: its string prompts are tokenized with the teacher's", type(self.student).__name__)
                self._said_tokenizer = True
        return self._student_tokens.get(prompt_key(prompts), lambda: tokenizer(list(prompts)).to(device))

    def _teacher_text(self, prompts: Prompts) -> torch.Tensor:
        """(K, D_t) frozen teacher features of one prompt set, computed once per set."""

        def compute() -> torch.Tensor:
            if isinstance(prompts, torch.Tensor):
                tokens = prompts
            else:
                tokenizer = getattr(self.teacher, "tokenizer", None)
                if tokenizer is None:
                    raise TypeError("prompts are strings but the teacher has no tokenizer; pass (K, L) token tensors")
                tokens = tokenizer(list(prompts))
            tokens = tokens.to(_device_of(self.teacher))
            with torch.no_grad():
                return cast(FrozenTeacher, self.teacher).encode_text(tokens)

        return self.teacher_text_cache.get(prompt_key(prompts), compute)

    def extra_repr(self) -> str:
        return f"teacher={type(self.teacher).__name__} (frozen, not in state_dict), config={self.config}"


def _teacher_dim(teacher: nn.Module, configured: Optional[int]) -> int:
    """The teacher's feature width: configured, its ``embed_dim``, or the width of one text encoding."""
    if configured is not None:
        return int(configured)
    dim = getattr(teacher, "embed_dim", None)
    if dim is not None:
        return int(dim)
    tokenizer = getattr(teacher, "tokenizer", None)
    if tokenizer is not None:
        with torch.no_grad():
            tokens = tokenizer(["a photo"]).to(_device_of(teacher))
            return int(cast(FrozenTeacher, teacher).encode_text(tokens).shape[-1])
    raise ValueError(
        f"cannot tell the feature width of the teacher {type(teacher).__name__}: it has no embed_dim and no tokenizer "
        "to encode one prompt with; pass teacher_dim=<its feature width>"
    )


def _width_mismatch(student_dim: int, teacher_dim: int) -> str:
    return (
        f"student features have width {student_dim} but the teacher's have {teacher_dim}: pass "
        "project_to_teacher=True (with student_dim=<student width> if the student has no embed_dim) to learn a "
        "linear map into the teacher's space"
    )


def _prompt_sets(prompts: object) -> tuple[list[Prompts], int]:
    """One prompt set or a list of sets -> (list of sets, K), each set checked, all of the same K."""
    # check_prompts refuses what is not a prompt set, so the casts below hold once it returns.
    if (
        isinstance(prompts, (torch.Tensor, str))
        or not isinstance(prompts, Sequence)
        or not prompts
        or any(isinstance(p, str) for p in prompts)
    ):
        return [cast(Prompts, prompts)], check_prompts(prompts)
    sizes = [check_prompts(p, f"prompts[{j}]") for j, p in enumerate(prompts)]
    if len(set(sizes)) != 1:
        raise ValueError(f"every prompt set must have one prompt per class; the sets hold {sizes} prompts")
    return [cast(Prompts, p) for p in prompts], sizes[0]


def _device_of(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _check_student_outputs(student_video: torch.Tensor, student_text: torch.Tensor, video: torch.Tensor, num_classes: int) -> None:
    if student_video.dim() not in (2, 3) or student_video.shape[0] != video.shape[0]:
        raise ValueError(
            f"student.encode_video must return (B, T, D) or (B, D) with B={video.shape[0]}, got {tuple(student_video.shape)}"
        )
    if student_text.dim() != 2 or student_text.shape[0] != num_classes:
        raise ValueError(f"student.encode_text must return ({num_classes}, D), got {tuple(student_text.shape)}")
    if student_text.shape[-1] != student_video.shape[-1]:
        raise ValueError(
            f"student video features (D={student_video.shape[-1]}) and text features (D={student_text.shape[-1]}) must share D"
        )
