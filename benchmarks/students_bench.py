"""What `benchmarks/run.py` measures for one student: size, FLOPs, step time, memory, throughput.

A *student step* is one training step of the student alone: video and class-text forward,
cross-entropy, backward, AdamW. A *distilled step* is the same step through
:class:`froster.ResidualDistiller` (teacher forward on the frames, teacher text, projectors,
distillation losses). Their ratio is the distillation overhead. Two ways to run the teacher:

* ``cached`` (this library's default): teacher text features cached per prompt set, teacher in
  bf16 (fp16 without bf16 support) on CUDA, ``impl="auto"`` (the fused kernel on CUDA);
* ``reference`` (the released code's way): the teacher text encoder re-run on every step for all
  classes, teacher in fp32, ``impl="torch"``.

Only the text *encoder* re-runs in ``reference`` mode: prompts are tokenized once, as the released
code does.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Optional

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from _harness import PeakMemory, device_sync, time_fn, time_interleaved
from froster import ResidualDistiller, build_student, student_logits
from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_build_kwargs, tiny_clip_overrides, tiny_prompts

TEACHER_MODES = ("cached", "reference")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class BenchSettings:
    """One benchmark run; saved whole with the results.

    Attributes:
        clip: open_clip model name; ``None`` for the embedded tiny config (random weights).
        pretrained: open_clip tag or weights file; ``None`` keeps random weights.
        frames, batch, classes: Video clip length T, clips per step B, class prompts K.
        image_size: Frame size; the CLIP config's when ``None``.
        device, dtype: Where and in which autocast dtype the student runs (``fp32``: no autocast).
        teacher_modes: Subset of :data:`TEACHER_MODES`.
        warmup: Untimed steps of every kind of step (>= 1); peak memory is measured over them.
        steps: Timed steps of every kind of step.
        profile_dir: Write torch.profiler traces under ``<profile_dir>/<student>/`` when set.
        profile_steps: Steps recorded per trace (after one warm-up step).
    """

    clip: Optional[str] = None
    pretrained: Optional[str] = None
    frames: int = 8
    batch: int = 2
    classes: int = 400
    image_size: Optional[int] = None
    device: str = "cpu"
    dtype: str = "fp32"
    teacher_modes: tuple[str, ...] = TEACHER_MODES
    warmup: int = 3
    steps: int = 10
    profile_dir: Optional[str] = None
    profile_steps: int = 2

    @property
    def clip_name(self) -> str:
        return self.clip or TINY_CLIP_NAME

    def clip_overrides(self) -> dict[str, Any]:
        """open_clip ``create_model`` keywords shared by every student and the teacher."""
        if self.clip is None:
            return tiny_clip_overrides(**({"image_size": self.image_size} if self.image_size else {}))
        return {"force_image_size": self.image_size} if self.image_size else {}

    def student_kwargs(self, name: str) -> dict[str, Any]:
        """``build_student(name, **kwargs)`` keywords (tiny ones honour the builder's ``tiny_kwargs``)."""
        if self.clip is None:
            return tiny_build_kwargs(name, self.frames, **({"image_size": self.image_size} if self.image_size else {}))
        return dict(clip=self.clip_name, pretrained=self.pretrained, num_frames=self.frames, **self.clip_overrides())

    @property
    def frame_size(self) -> int:
        """Frame height and width: ``image_size``, else the CLIP config's."""
        if self.image_size:
            return self.image_size
        if self.clip is None:
            return tiny_clip_overrides()["vision_cfg"]["image_size"]
        import open_clip

        size = open_clip.get_model_config(self.clip)["vision_cfg"]["image_size"]
        return size if isinstance(size, int) else size[0]

    def describe_weights(self) -> str:
        if self.clip is None:
            return "tiny CLIP config (ViT-B-16 shrunk to 2 blocks, width 64), random weights, nothing downloaded"
        if self.pretrained is None:
            return f"{self.clip} sizes with random weights (--pretrained not given)"
        return f"{self.clip} weights from {self.pretrained}"

    def teacher_dtype(self, mode: str) -> str:
        """fp32 for the reference; half precision on CUDA for the cached mode (forward only)."""
        if mode == "reference" or torch.device(self.device).type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"

    def impl(self, mode: str) -> str:
        return "torch" if mode == "reference" else "auto"

    def phases(self) -> int:
        """Progress-bar ticks of one student."""
        per = self.warmup + self.steps
        profiled = (1 + self.profile_steps) * (1 + len(self.teacher_modes)) if self.profile_dir else 0
        return per * (2 + len(self.teacher_modes)) + profiled

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clip": self.clip or "tiny", "weights": self.describe_weights()}


class RecomputingTextCache:
    """Stands in for the distiller's teacher text cache and never caches: the released code's way."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        self.misses += 1
        return compute().detach()

    def clear(self) -> None:
        pass


def _memo_tokenizer(tokenizer: Callable) -> Callable:
    # The released code tokenizes its class prompts once; only the text encoder re-runs per step.
    memo: dict[tuple[str, ...], torch.Tensor] = {}

    def tokenize(texts):
        key = tuple(texts)
        if key not in memo:
            memo.clear()
            memo[key] = tokenizer(list(texts))
        return memo[key]

    return tokenize


class TeacherPool:
    """Builds each teacher precision once per run: every student is distilled from the same CLIP."""

    def __init__(self, settings: BenchSettings):
        self.settings = settings
        self._teachers: dict[str, OpenCLIPTeacher] = {}

    def get(self, precision: str) -> OpenCLIPTeacher:
        if precision not in self._teachers:
            s = self.settings
            teacher = OpenCLIPTeacher.from_pretrained(
                s.clip_name, s.pretrained, precision=precision, device=s.device, **s.clip_overrides()
            )
            teacher.tokenizer = _memo_tokenizer(teacher.tokenizer)
            self._teachers[precision] = teacher
        return self._teachers[precision]


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


def _train_step(loss_fn: Callable[[], torch.Tensor], params, amp: Callable) -> Callable[[], None]:
    # The learning rate is irrelevant to speed; a tiny one keeps random weights finite.
    optimizer = torch.optim.AdamW([p for p in params if p.requires_grad], lr=1e-7)

    def step() -> None:
        with amp():
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _warm_and_measure_memory(step: Callable[[], None], s: BenchSettings, tick: Callable[[], None]) -> PeakMemory:
    # The warm-up steps double as the memory measurement: the first one creates the optimiser
    # state and the gradients, which belong to the cost of training.
    with PeakMemory(s.device) as memory:
        for _ in range(s.warmup):
            step()
            tick()
    return memory


def _profile(step: Callable[[], None], out_dir: Path, worker: str, s: BenchSettings, tick: Callable[[], None]) -> None:
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.device(s.device).type == "cuda" else [])
    with profile(
        activities=activities,
        schedule=schedule(wait=0, warmup=1, active=s.profile_steps),
        on_trace_ready=tensorboard_trace_handler(str(out_dir), worker_name=worker),
        record_shapes=True,
        profile_memory=True,
        acc_events=True,  # a single cycle is recorded: same trace, and no warning about dropped cycles
    ) as profiler:
        for _ in range(1 + s.profile_steps):
            step()
            profiler.step()
            tick()


def bench_student(name: str, s: BenchSettings, teachers: TeacherPool, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Every figure of one student, as one flat row (see ``docs/benchmarks.md`` for each key).

    Each kind of step (student alone, then one per teacher mode) is warmed up on its own while
    its peak memory is measured; then all kinds are timed interleaved, step by step, so that their
    ratios come from the same seconds of a possibly busy machine.
    """
    device = torch.device(s.device)

    def amp():
        if s.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=DTYPES[s.dtype])

    student = build_student(name, **s.student_kwargs(name)).to(device).train()
    # A student whose vision tower is not CLIP's (timm_vit) says which frame size it takes.
    size = (getattr(student, "image_size", None) or (s.frame_size,))[0]
    video = synthetic_video(s.batch, s.frames, size).to(device)  # (B, 3, T, H, W)
    labels = torch.randint(0, s.classes, (s.batch,), generator=torch.Generator().manual_seed(0)).to(device)
    prompts = tiny_prompts(s.classes)
    tokens = student.tokenizer(prompts).to(device)  # (K, L)
    row: dict[str, Any] = {"student": name, "clip": s.clip or "tiny", "weights": "random" if s.pretrained is None else s.pretrained,
                           "frames": s.frames, "batch": s.batch, "classes": s.classes, "image_size": size,
                           "device": device.type, "dtype": s.dtype}

    params = list(student.parameters())
    row["params_total"] = sum(p.numel() for p in params)
    row["params_trainable"] = sum(p.numel() for p in params if p.requires_grad)
    teacher = teachers.get(s.teacher_dtype(s.teacher_modes[0]))
    row["teacher_params"] = sum(p.numel() for p in teacher.parameters())
    row["student_gflops"] = count_flops(lambda: student.encode_video(video[:1])) / 1e9
    row["student_text_gflops"] = count_flops(lambda: student.encode_text(tokens)) / 1e9
    row["teacher_gflops"] = count_flops(lambda: teacher.encode_frames(video[:1])) / 1e9
    teacher_tokens = teacher.tokenizer(prompts).to(device)
    row["teacher_text_gflops"] = count_flops(lambda: teacher.encode_text(teacher_tokens)) / 1e9

    def student_loss() -> torch.Tensor:
        logits = student_logits(student, student.encode_video(video), student.encode_text(tokens))  # (B, K)
        return F.cross_entropy(logits.float(), labels)

    steps = {"student": _train_step(student_loss, student.parameters(), amp)}
    memory = _warm_and_measure_memory(steps["student"], s, tick)
    row["resident_mb"], row["student_peak_mb"], row["memory_method"] = memory.baseline_mb, memory.peak_mb, memory.method
    distillers = {}
    for mode in s.teacher_modes:
        try:
            distiller = ResidualDistiller(student, teachers.get(s.teacher_dtype(mode)), impl=s.impl(mode), project_to_teacher=True).to(device)
            if mode == "reference":
                distiller.teacher_text_cache = RecomputingTextCache()
            row[f"{mode}_teacher_dtype"] = s.teacher_dtype(mode)
            row[f"{mode}_impl"] = "triton" if s.impl(mode) == "auto" and device.type == "cuda" and _has_triton() else "torch"
            trainable = [p for p in distiller.parameters() if p.requires_grad]
            row["projector_params"] = sum(p.numel() for p in trainable) - row["params_trainable"]
            step = _train_step(lambda d=distiller: d(video, prompts, labels).loss, trainable, amp)
            row[f"{mode}_peak_mb"] = _warm_and_measure_memory(step, s, tick).peak_mb
            steps[mode], distillers[mode] = step, distiller
        except Exception as error:  # e.g. a kernel failing on this GPU: keep the other figures
            row[f"{mode}_error"] = f"{type(error).__name__}: {error}"

    timed = time_interleaved(steps, 0, s.steps, device_sync(device), tick)
    row["student_step_ms"], row["student_step_p90_ms"] = timed["student"]["median_ms"], timed["student"]["p90_ms"]
    for mode, distiller in distillers.items():
        row[f"{mode}_step_ms"], row[f"{mode}_step_p90_ms"] = timed[mode]["median_ms"], timed[mode]["p90_ms"]
        row[f"{mode}_overhead"] = row[f"{mode}_step_ms"] / row["student_step_ms"]
        row[f"{mode}_text_encodes"] = distiller.teacher_text_cache.misses
    if "reference" in distillers and "cached" in distillers:
        row["reference_vs_cached"] = row["reference_step_ms"] / row["cached_step_ms"]

    student.eval()
    with torch.inference_mode(), amp():
        text_features = student.encode_text(tokens)  # (K, D), encoded once as at test time
        infer = time_fn(lambda: student_logits(student, student.encode_video(video), text_features), s.warmup, s.steps,
                        device_sync(device), tick)
    student.train()
    row["infer_ms"] = infer["median_ms"]
    row["infer_clips_per_s"] = s.batch / (infer["median_ms"] / 1e3)

    if s.profile_dir:
        for phase, step in steps.items():
            _profile(step, Path(s.profile_dir) / name, phase if phase == "student" else f"distilled-{phase}", s, tick)
    return row


def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
