"""The training steps `benchmarks/run.py` times: a student alone, and distilled in several modes.

Every step follows the released prompt protocol: a fresh pair of prompt sets per step (one of the
28 templates drawn at random, filled with class name and description, and the bare
"name: description" entry), encoded on each side and ensembled. Every kind of step draws the same
sequence of templates from the same seed.

A distilled step is one :class:`froster.ResidualDistiller` step. Its *mode* sets three factors
(:data:`MODE_FACTORS`), so that each one's effect shows on its own:

* ``text_cache``: the teacher's text features and the student's tokens are kept per prompt set
  (the distiller's default). Without it, both sides tokenize and the teacher encodes both
  prompt sets on every step, as the released code does.
* ``half_teacher``: the teacher in bf16 (fp16 without bf16 support) on CUDA; fp32 otherwise.
* ``fused_loss``: ``impl="auto"`` (the fused Triton op on CUDA); ``impl="torch"`` otherwise.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from froster import ResidualDistiller, build_student, student_logits
from froster.protocols import encode_video_for_head
from froster.teachers import OpenCLIPTeacher
from froster.teachers.text_cache import prompt_key
from froster.testing import TINY_CLASS_NAMES, synthetic_video
from froster.text import ALL_TEMPLATES, ClassText, ensemble_features, prompt_set, training_prompt_sets

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ModeFactors:
    """What one distilled mode switches on (see the module docstring)."""

    text_cache: bool
    half_teacher: bool
    fused_loss: bool


# A ladder from the released code's way to this library's: each mode adds one factor.
MODE_FACTORS = {
    "reference": ModeFactors(text_cache=False, half_teacher=False, fused_loss=False),
    "text_cache": ModeFactors(text_cache=True, half_teacher=False, fused_loss=False),
    "half_teacher": ModeFactors(text_cache=True, half_teacher=True, fused_loss=False),
    "cached": ModeFactors(text_cache=True, half_teacher=True, fused_loss=True),
}
TEACHER_MODES = tuple(MODE_FACTORS)


def bench_classes(num_classes: int) -> list[ClassText]:
    """K classes with one-sentence descriptions, standing in for the released LLM descriptions."""
    names = [TINY_CLASS_NAMES[i % len(TINY_CLASS_NAMES)] + ("" if i < len(TINY_CLASS_NAMES) else f" {i}")
             for i in range(num_classes)]
    return [ClassText(name, f"a person doing {name}, seen in a short video clip.") for name in names]


class PromptStream:
    """The released protocol's prompt sets, step after step, from a fixed seed."""

    def __init__(self, classes: list[ClassText], seed: int = 0):
        self.classes = classes
        self.rng = random.Random(seed)

    def next(self) -> list[list[str]]:
        return training_prompt_sets(self.classes, self.rng)


class RecomputingTextCache:
    """Stands in for the distiller's caches and never keeps anything: the released code's way."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        self.misses += 1
        return compute().detach()

    def clear(self) -> None:
        pass


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` by ``FlopCounterMode`` (a multiply-add counts 2), without autograd.

    PyTorch's table has no formula for the CPU flash-attention kernel that ``scaled_dot_product_
    attention`` picks on CPU; it is added so that attention counts on every device. The fused
    ``nn.MultiheadAttention`` inference fast path (taken by frozen modules in eval mode) has no
    formula either, so it is switched off while counting: the same matmuls are then counted.
    """
    extra = {}
    cpu_flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_flash is not None:
        extra[cpu_flash] = lambda q, k, v, *args, out_shape=None, **kwargs: sdpa_flop_count(q, k, v)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=extra) as counter:
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops()


class TeacherPool:
    """Builds each teacher precision once per run: every student is distilled from the same CLIP."""

    def __init__(self, clip_name: str, pretrained, device: str, overrides: dict):
        self.args = (clip_name, pretrained, device, overrides)
        self._teachers: dict[str, OpenCLIPTeacher] = {}

    def get(self, precision: str) -> OpenCLIPTeacher:
        if precision not in self._teachers:
            name, pretrained, device, overrides = self.args
            self._teachers[precision] = OpenCLIPTeacher.from_pretrained(
                name, pretrained, precision=precision, device=device, **overrides
            )
        return self._teachers[precision]


def _train_step(loss_fn: Callable[[], torch.Tensor], params, amp: Callable) -> tuple[Callable[[], None], torch.optim.Optimizer]:
    # The learning rate is irrelevant to speed; a tiny one keeps random weights finite.
    optimizer = torch.optim.AdamW([p for p in params if p.requires_grad], lr=1e-7)

    def step() -> None:
        with amp():
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, optimizer


class StudentSteps:
    """One student, its inputs and the steps of every kind (``"student"`` or a mode name).

    Args:
        name: Registered student.
        build_kwargs: ``build_student`` keywords.
        frame_size: Frame height and width when the student does not name its own.
        frames, batch, classes: T, B and K.
        device, dtype: Where the student runs and its autocast dtype (``fp32``: none).
        teachers: Shared teachers, one per precision.
    """

    def __init__(self, name: str, build_kwargs: dict, frame_size: int, frames: int, batch: int, classes: int,
                 device: str, dtype: str, teachers: TeacherPool):
        self.device = torch.device(device)
        self.dtype = dtype
        self.teachers = teachers
        self.student = build_student(name, **build_kwargs).to(self.device).train()
        # A student whose vision tower is not CLIP's (timm_vit) says which frame size it takes.
        self.image_size = (getattr(self.student, "image_size", None) or (frame_size,))[0]
        self.video = synthetic_video(batch, frames, self.image_size).to(self.device)  # (B, 3, T, H, W)
        self.labels = torch.randint(0, classes, (batch,), generator=torch.Generator().manual_seed(0)).to(self.device)
        self.classes = bench_classes(classes)
        self._tokens: dict[Hashable, torch.Tensor] = {}

    def amp(self):
        if self.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.dtype])

    def teacher_precision(self, mode: str) -> str:
        if MODE_FACTORS[mode].half_teacher and self.device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"

    @staticmethod
    def impl(mode: str) -> str:
        return "auto" if MODE_FACTORS[mode].fused_loss else "torch"

    def student_tokens(self, prompts: list[str]) -> torch.Tensor:
        """Tokens per prompt set, kept as the distiller keeps them."""
        key = prompt_key(prompts)
        if key not in self._tokens:
            self._tokens[key] = self.student.tokenizer(prompts).to(self.device)
        return self._tokens[key]

    def student_step(self) -> tuple[Callable[[], None], torch.optim.Optimizer]:
        """Cross-entropy of the student alone on its ensembled prompt sets."""
        stream = PromptStream(self.classes)

        def loss() -> torch.Tensor:
            text = ensemble_features([self.student.encode_text(self.student_tokens(s)) for s in stream.next()])  # (K, D)
            encoding = encode_video_for_head(self.student, self.video)
            logits = student_logits(self.student, encoding.features, text, **encoding.head_inputs)  # (B, K)
            return F.cross_entropy(logits.float(), self.labels)

        return _train_step(loss, self.student.parameters(), self.amp)

    def distiller(self, mode: str) -> ResidualDistiller:
        teacher = self.teachers.get(self.teacher_precision(mode))
        differ = getattr(self.student, "embed_dim", None) != getattr(teacher, "embed_dim", None)
        distiller = ResidualDistiller(self.student, teacher, impl=self.impl(mode), project_to_teacher=differ).to(self.device)
        if MODE_FACTORS[mode].text_cache:
            self.prefill_teacher_text(distiller)
        else:
            distiller.teacher_text_cache = RecomputingTextCache()
            # The released code tokenizes the student's prompts on every step too.
            if not hasattr(distiller, "_student_tokens"):
                raise AttributeError("ResidualDistiller no longer keeps _student_tokens: update the reference mode")
            distiller._student_tokens = RecomputingTextCache()
        return distiller

    def prefill_teacher_text(self, distiller: ResidualDistiller) -> None:
        """The cache as it stands after the first few hundred steps: all 29 prompt sets encoded.

        Computed as the distiller computes them; a miss during the timed steps would show in
        ``<mode>_text_encodes``.
        """
        teacher = distiller.teacher
        for prompts in (prompt_set(template, self.classes) for template in ALL_TEMPLATES):
            def encode(p=prompts):
                with torch.no_grad():
                    return teacher.encode_text(teacher.tokenizer(p).to(self.device))

            distiller.teacher_text_cache.get(prompt_key(prompts), encode)
        distiller.teacher_text_cache.hits = distiller.teacher_text_cache.misses = 0

    def distilled_step(self, mode: str) -> tuple[Callable[[], None], torch.optim.Optimizer, ResidualDistiller]:
        distiller = self.distiller(mode)
        stream = PromptStream(self.classes)
        trainable = [p for p in distiller.parameters() if p.requires_grad]
        step, optimizer = _train_step(lambda: distiller(self.video, stream.next(), self.labels).loss, trainable, self.amp)
        return step, optimizer, distiller

    def step(self, kind: str) -> tuple[Callable[[], None], torch.optim.Optimizer, Any]:
        """``(step, optimizer, distiller or None)`` of one kind."""
        if kind == "student":
            return (*self.student_step(), None)
        return self.distilled_step(kind)
