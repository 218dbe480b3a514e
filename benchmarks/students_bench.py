"""What `benchmarks/run.py` measures for one student: size, FLOPs, step time, memory, throughput.

A *student step* is one training step of the student alone: video and class-text forward,
cross-entropy, backward, AdamW. A *distilled step* is the same step through
:class:`froster.ResidualDistiller`, in one of the modes of :mod:`_training_steps` (``reference``:
the released code's way; ``cached``: this library's; ``text_cache`` and ``half_teacher`` in
between, one factor at a time). Distilled / student step time is the distillation overhead.

Timing: every kind of step is warmed up, then all kinds run in rounds, the order rotated each
round; each ratio is taken per round and reported as its median, p10-p90 and a bootstrap
interval. Memory: each kind's peak is measured in isolation, in a fresh process on CPU (the heap
keeps what an earlier measurement freed) and in-process on CUDA (allocated bytes, exact), with
nothing of the other kinds alive.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from _harness import PeakMemory, device_sync, ratio_stats, release_host_memory, time_fn, time_interleaved
from _training_steps import DTYPES, MODE_FACTORS, TEACHER_MODES, StudentSteps, TeacherPool, count_flops  # noqa: F401
from froster.testing import TINY_CLIP_NAME, tiny_build_kwargs, tiny_clip_overrides

MEMORY_METHODS = ("auto", "process", "inline")
PROBE = Path(__file__).resolve().parent / "memory_probe.py"


@dataclass
class BenchSettings:
    """One benchmark run; saved whole with the results.

    Attributes:
        clip: open_clip model name; ``None`` for the embedded tiny config (random weights).
        pretrained: open_clip tag or weights file; ``None`` keeps random weights.
        frames, batch, classes: Video clip length T, clips per step B, classes K.
        image_size: Frame size; the CLIP config's when ``None``.
        device, dtype: Where and in which autocast dtype the student runs (``fp32``: no autocast).
        teacher_modes: Distilled modes asked for, a subset of :data:`TEACHER_MODES`.
        warmup: Untimed steps of every kind (>= 1); the memory measurement runs this many too.
        steps: Timed rounds; each round runs one step of every kind.
        memory: ``process`` (a fresh process per kind), ``inline`` or ``auto`` (process on CPU,
            inline on CUDA).
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
    steps: int = 20
    memory: str = "auto"
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

    @property
    def on_cuda(self) -> bool:
        return torch.device(self.device).type == "cuda"

    def resolved(self, mode: str) -> tuple[bool, bool, bool]:
        """The factors a mode really switches on this device (half teacher and kernel: CUDA only)."""
        f = MODE_FACTORS[mode]
        return f.text_cache, f.half_teacher and self.on_cuda, f.fused_loss and self.on_cuda

    def modes(self) -> tuple[str, ...]:
        """The asked modes that differ on this device; of modes that coincide, the last is kept.

        On CPU ``text_cache``, ``half_teacher`` and ``cached`` are one and the same step (fp32
        teacher, torch loss), measured once as ``cached``.
        """
        asked = [m for m in TEACHER_MODES if m in self.teacher_modes]
        return tuple(m for i, m in enumerate(asked) if all(self.resolved(m) != self.resolved(o) for o in asked[i + 1:]))

    def merged_modes(self) -> dict[str, list[str]]:
        """``{kept mode: [asked modes measured as it]}`` where modes coincide on this device."""
        kept = self.modes()
        return {k: [m for m in self.teacher_modes if m != k and self.resolved(m) == self.resolved(k)] for k in kept
                if any(m != k and self.resolved(m) == self.resolved(k) for m in self.teacher_modes)}

    def memory_method(self) -> str:
        if self.memory == "auto":
            return "inline" if self.on_cuda else "process"
        return self.memory

    def kinds(self) -> tuple[str, ...]:
        return ("student", *self.modes())

    def phases(self) -> int:
        """Progress-bar ticks of one student."""
        kinds = len(self.kinds())
        profiled = (1 + self.profile_steps) * kinds if self.profile_dir else 0
        memory = self.warmup * kinds if self.memory_method() == "inline" else 0
        inference = self.warmup + self.steps
        return (self.warmup + self.steps) * kinds + memory + inference + profiled

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clip": self.clip or "tiny", "weights": self.describe_weights(),
                "measured_modes": list(self.modes()), "merged_modes": self.merged_modes(),
                "memory_method": self.memory_method()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchSettings":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["clip"] = None if values.get("clip") == "tiny" else values.get("clip")
        values["teacher_modes"] = tuple(values.get("teacher_modes", TEACHER_MODES))
        return cls(**values)


def build_steps(name: str, s: BenchSettings, teachers: TeacherPool) -> StudentSteps:
    return StudentSteps(name, s.student_kwargs(name), s.frame_size, s.frames, s.batch, s.classes, s.device, s.dtype, teachers)


def teacher_pool(s: BenchSettings) -> TeacherPool:
    return TeacherPool(s.clip_name, s.pretrained, s.device, s.clip_overrides())


def peak_of(steps: StudentSteps, kind: str, warmup: int, tick: Callable[[], None] = lambda: None) -> PeakMemory:
    """Peak memory of ``warmup`` steps of one kind, built fresh; its state is freed afterwards.

    One step runs first, unmeasured, for what a process pays once whatever it trains (library
    workspaces, thread pools); its optimiser state and gradients are then dropped, so the
    measured steps create them again: they belong to the cost of training. The baseline
    (weights, teachers, inputs, the teacher's text cache) does not.
    """
    step, optimizer, _ = steps.step(kind)
    step()
    optimizer.state.clear()
    release_host_memory()
    with PeakMemory(steps.device) as memory:
        for _ in range(warmup):
            step()
            tick()
    optimizer.state.clear()
    del step, optimizer
    release_host_memory()
    return memory


def peak_in_fresh_process(name: str, kind: str, s: BenchSettings) -> dict[str, Any]:
    """:func:`peak_of` in a new Python process (benchmarks/memory_probe.py), which prints JSON."""
    # glibc keeps freed blocks above its (growing) mmap threshold in the heap; fixed at 64 KiB,
    # every tensor-sized block goes back to the OS when freed and the RSS follows live memory.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, str(PROBE), "--student", name, "--kind", kind, "--settings", json.dumps(s.to_dict()),
         "--threads", str(torch.get_num_threads())],  # the threads the timed steps run with
        capture_output=True, text=True, timeout=3600, env=env,
    )
    if done.returncode != 0:
        last_line = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}, nothing on stderr"])[-1]
        raise RuntimeError(f"memory probe of {name}/{kind} failed: {last_line}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _profile(step: Callable[[], None], out_dir: Path, worker: str, s: BenchSettings, tick: Callable[[], None]) -> None:
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if s.on_cuda else [])
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
    """Every figure of one student, as one flat row (see ``docs/benchmarks.md`` for each key)."""
    steps = build_steps(name, s, teachers)
    student, device = steps.student, steps.device
    row: dict[str, Any] = {"student": name, "clip": s.clip or "tiny", "weights": "random" if s.pretrained is None else s.pretrained,
                           "frames": s.frames, "batch": s.batch, "classes": s.classes, "image_size": steps.image_size,
                           "device": device.type, "dtype": s.dtype}
    params = list(student.parameters())
    row["params_total"] = sum(p.numel() for p in params)
    row["params_trainable"] = sum(p.numel() for p in params if p.requires_grad)
    video, prompts = steps.video, [c.prompt("a video of a person {}.") for c in steps.classes]
    tokens = student.tokenizer(prompts).to(device)
    teacher = teachers.get("fp32")
    row["teacher_params"] = sum(p.numel() for p in teacher.parameters())
    row["student_gflops"] = count_flops(lambda: student.encode_video(video[:1])) / 1e9
    row["student_text_gflops"] = count_flops(lambda: student.encode_text(tokens)) / 1e9
    row["teacher_gflops"] = count_flops(lambda: teacher.encode_frames(video[:1])) / 1e9
    teacher_tokens = teacher.tokenizer(prompts).to(device)
    row["teacher_text_gflops"] = count_flops(lambda: teacher.encode_text(teacher_tokens)) / 1e9

    # Memory first, each kind on its own, before the timed steps keep every kind alive at once.
    row["memory_method"] = s.memory_method()
    for kind in s.kinds():
        try:
            if s.memory_method() == "inline":
                memory = peak_of(steps, kind, s.warmup, tick)
                peak = {"peak_mb": memory.peak_mb, "baseline_mb": memory.baseline_mb, "method": memory.method}
            else:
                peak = peak_in_fresh_process(name, kind, s)
            row[f"{kind}_peak_mb"] = peak["peak_mb"]
            row[f"{kind}_resident_mb"] = peak["baseline_mb"]
            row["memory_measure"] = peak["method"]
        except Exception as error:  # e.g. a kernel failing on this GPU: keep the other figures
            row[f"{kind}_error"] = f"{type(error).__name__}: {error}"

    timed_steps, distillers = {}, {}
    for kind in s.kinds():
        if f"{kind}_error" in row:
            continue
        try:
            step, _, distiller = steps.step(kind)
            for _ in range(s.warmup):
                step()
                tick()
            timed_steps[kind] = step
            if distiller is not None:
                distillers[kind] = distiller
                factors = s.resolved(kind)
                row[f"{kind}_text_cache"] = factors[0]
                row[f"{kind}_teacher_dtype"] = steps.teacher_precision(kind)
                row[f"{kind}_impl"] = "triton" if factors[2] and _has_triton() else "torch"
                row["projector_params"] = sum(p.numel() for p in distiller.parameters() if p.requires_grad) - row["params_trainable"]
                distiller.teacher_text_cache.misses = 0
        except Exception as error:
            row[f"{kind}_error"] = f"{type(error).__name__}: {error}"

    timed = time_interleaved(timed_steps, 0, s.steps, device_sync(device), tick) if timed_steps else {}
    for kind, stats in timed.items():
        row[f"{kind}_step_ms"], row[f"{kind}_step_p10_ms"], row[f"{kind}_step_p90_ms"] = (
            stats["median_ms"], stats["p10_ms"], stats["p90_ms"])
        row[f"{kind}_times_ms"] = stats["times_ms"]
    for kind, distiller in distillers.items():
        row[f"{kind}_text_encodes"] = distiller.teacher_text_cache.misses  # during the timed steps
        if "student" in timed:  # else the student's own step failed: no ratio to take
            _put_ratio(row, f"{kind}_overhead", ratio_stats(timed[kind]["times_ms"], timed["student"]["times_ms"]))
    if "reference" in distillers and "cached" in distillers:
        _put_ratio(row, "reference_vs_cached", ratio_stats(timed["reference"]["times_ms"], timed["cached"]["times_ms"]))

    student.eval()
    with torch.inference_mode(), steps.amp():
        text_features = student.encode_text(tokens)  # (K, D), encoded once as at test time
        infer = time_fn(lambda: _logits(student, video, text_features), s.warmup, s.steps, device_sync(device), tick)
    student.train()
    row["infer_ms"] = infer["median_ms"]
    row["infer_clips_per_s"] = s.batch / (infer["median_ms"] / 1e3)

    if s.profile_dir:
        for kind, step in timed_steps.items():
            _profile(step, Path(s.profile_dir) / name, kind if kind == "student" else f"distilled-{kind}", s, tick)
    return row


def _logits(student, video, text_features):
    from froster import student_logits
    from froster.protocols import encode_video_for_head

    encoding = encode_video_for_head(student, video)
    return student_logits(student, encoding.features, text_features, **encoding.head_inputs)


def _put_ratio(row: dict[str, Any], key: str, stats: dict[str, float]) -> None:
    row[key] = stats["median"]
    for part in ("p10", "p90", "ci90_low", "ci90_high"):
        row[f"{key}_{part}"] = stats[part]


def _has_triton() -> bool:
    from froster.ops.dispatch import triton_importable

    return triton_importable()
