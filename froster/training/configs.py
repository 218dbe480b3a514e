"""Small config dataclasses, one per component of a training run, saved with checkpoints as JSON.

A run is described by :class:`RunConfig`, which only groups the component configs: the data,
the student, the teacher, the distillation (:class:`froster.DistillConfig`), the optimiser, the
schedule, the training loop, weight averaging/patching and evaluation. Each component reads only
its own config. Recipes (``froster/recipes/*.json``) are these trees as JSON; command-line
overrides address them with dotted keys, e.g. ``optim.lr=3.33e-6`` or ``student.name=vclip``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from froster.config import DistillConfig
from froster.training.overrides import ConfigError, from_dict, loads_json, to_dict
from froster.validation import FieldValueError, require_int, require_number


@dataclass
class SyntheticConfig:
    """Synthetic labelled videos written by :mod:`froster.data.synthetic` (tests, smoke runs).

    Attributes:
        num_classes: K.
        train_videos_per_class: Videos of each class in ``train.txt``.
        test_videos_per_class: Videos of each class in ``test.txt`` (another seed).
        frames: Frames per video.
        size: Height and width in pixels.
        seed: Seed of the pixels.
    """

    num_classes: int = 4
    train_videos_per_class: int = 4
    test_videos_per_class: int = 2
    frames: int = 16
    size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_classes", "train_videos_per_class", "frames"):
            require_int(self, name)
        require_int(self, "test_videos_per_class", minimum=0)
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 2 or self.size % 2:
            raise FieldValueError("size", "an even integer >= 2 (4:2:0 video)", self.size)


@dataclass
class DataConfig:
    """Training videos, frame sampling, augmentation and the loader.

    Attributes:
        root: Directory the split file's paths are relative to.
        train_split: ``path label`` split file (relative to ``root`` unless absolute).
        class_names: Class-name file of the training labels (relative to ``root``).
        descriptions: Optional JSON of LLM-rephrased class descriptions (the paper's text).
        shots_per_class: Keep this many videos of each class (base-to-novel: 16), chosen with
            the run's seed; ``None`` keeps all.
        num_frames: T, frames per clip (the student is built for it).
        sampling: ``"dense"`` (``num_frames`` frames ``stride`` apart) or ``"uniform"`` (TSN).
        stride: Frame stride of dense sampling.
        image_size: Side of the square crop.
        short_side: Inclusive range of the training short-side scale jitter.
        num_test_clips: Temporal views at test time (the paper: 3).
        backend: Decoder: ``"auto"`` (torchcodec where it works, else PyAV), ``"torchcodec"``,
            ``"pyav"`` or ``"pytorchvideo"`` (:mod:`froster.data.decoding`).
        batch_size: Videos per step *per process*.
        num_workers: DataLoader worker processes per process.
        synthetic: When set, synthetic videos are written under ``root`` (if missing) and used.
    """

    root: Optional[str] = None
    train_split: Optional[str] = None
    class_names: Optional[str] = None
    descriptions: Optional[str] = None
    shots_per_class: Optional[int] = None
    num_frames: int = 8
    sampling: Literal["dense", "uniform"] = "dense"
    stride: int = 16
    image_size: int = 224
    short_side: tuple[int, int] = (224, 256)
    num_test_clips: int = 3
    backend: Literal["auto", "torchcodec", "pyav", "pytorchvideo"] = "auto"
    batch_size: int = 8
    num_workers: int = 4
    synthetic: Optional[SyntheticConfig] = None

    def __post_init__(self) -> None:
        for name in ("num_frames", "stride", "image_size", "num_test_clips", "batch_size"):
            require_int(self, name)
        require_int(self, "shots_per_class", optional=True)
        require_int(self, "num_workers", minimum=0)
        low, high = self.short_side
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (low, high)) or low > high:
            raise FieldValueError("short_side", "an increasing (min, max) pair of integers >= 1", tuple(self.short_side))


@dataclass
class StudentConfig:
    """The trainable student, built with :func:`froster.build_student`.

    Attributes:
        name: A registered student (``froster.list_students()``).
        clip: open_clip model name the student starts from.
        pretrained: open_clip tag (``"openai"``, downloaded where a network exists), a local
            weights file, or ``None`` for random weights.
        activation: CLIP's MLP activation: ``"quick_gelu"`` (OpenAI's CLIP and every model
            fine-tuned from it), ``"gelu"``, or ``"auto"`` (what ``pretrained`` was trained with,
            see :mod:`froster.clip_activation`; the run records the resolved one).
        options: Extra keyword arguments of the student's builder (e.g. ``clip_ends`` of vclip).
        clip_overrides: open_clip config overrides (tiny models in tests).
        trust_code: Let a TorchScript ``pretrained`` file run the code it carries
            (``torch.jit.load``); only for files you trust. By default its weights are read
            without running anything (the trust model in ``docs/api.md``).
    """

    name: str = "vclip"
    clip: str = "ViT-B-16"
    pretrained: Optional[str] = "openai"
    activation: Literal["auto", "quick_gelu", "gelu"] = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    clip_overrides: dict[str, Any] = field(default_factory=dict)
    trust_code: bool = False


@dataclass
class TeacherConfig:
    """The frozen CLIP teacher (:meth:`froster.teachers.OpenCLIPTeacher.from_pretrained`).

    Attributes:
        clip: open_clip model name.
        pretrained: open_clip tag, local weights file, or ``None`` (random; tests only).
        activation: CLIP's MLP activation, as for the student.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``; the teacher only runs forward.
        clip_overrides: open_clip config overrides.
        trust_code: As for the student: let a TorchScript ``pretrained`` file run its code.
    """

    clip: str = "ViT-B-16"
    pretrained: Optional[str] = "openai"
    activation: Literal["auto", "quick_gelu", "gelu"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    clip_overrides: dict[str, Any] = field(default_factory=dict)
    trust_code: bool = False


@dataclass
class OptimConfig:
    """AdamW.

    Attributes:
        lr: Peak learning rate (after warm-up).
        weight_decay: Decoupled weight decay of matrices and embeddings.
        decay_1d: Also decay 1-D parameters (biases, norms, ``logit_scale``); off in the paper.
        betas: Adam's betas.
        eps: Adam's epsilon.
        grad_clip: Clip the global gradient norm to this value; ``None`` disables clipping.
    """

    lr: float = 3.33e-6
    weight_decay: float = 0.01
    decay_1d: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: Optional[float] = 1.0

    def __post_init__(self) -> None:
        require_number(self, "lr", low_open=True)
        require_number(self, "weight_decay")
        require_number(self, "eps", low_open=True)
        require_number(self, "grad_clip", low_open=True, optional=True)
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in self.betas):
            raise FieldValueError("betas", "two numbers in [0, 1)", tuple(self.betas))


@dataclass
class ScheduleConfig:
    """Epochs and the per-step learning-rate schedule: linear warm-up, then cosine decay.

    Attributes:
        epochs: Training epochs.
        warmup_epochs: Linear warm-up length in epochs (fractions allowed).
        warmup_start_factor: Learning rate at step 0, as a fraction of ``optim.lr``.
        final_factor: Learning rate at the last step, as a fraction of ``optim.lr``.
    """

    epochs: int = 22
    warmup_epochs: float = 2.0
    warmup_start_factor: float = 0.01
    final_factor: float = 0.0

    def __post_init__(self) -> None:
        require_int(self, "epochs")
        require_number(self, "warmup_epochs")
        require_number(self, "warmup_start_factor", high=1.0)
        require_number(self, "final_factor", high=1.0)


@dataclass
class TrainConfig:
    """The training loop.

    Attributes:
        output_dir: Where checkpoints, TensorBoard logs, averaged weights and metrics go.
        seed: Seed of every random draw of the run (weights of random students included).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        precision: ``"bf16"`` autocast or ``"fp32"``; bf16 autocast is used on CUDA and, when
            asked, on the CPU.
        grad_checkpointing: Recompute activations in the backward pass to save memory; needs a
            student with ``set_grad_checkpointing`` or open_clip-style ``grad_checkpointing`` flags.
        log_every_steps: TensorBoard scalars every this many steps.
        checkpoint_every_steps: Also checkpoint inside epochs; ``None``: at epoch ends only.
        keep_checkpoints: Checkpoints kept on disk (the newest ones).
        prompt_protocol: The class prompts of each step: ``"released"`` (one of the 28 templates
            and the bare class entry, ensembled, as the released code does) or
            ``"single_template"`` (one of the 29 prompt sets).
        max_steps: Stop after this global step (the schedule still spans ``schedule.epochs``);
            ``None`` trains to the end. A checkpoint is written where it stops.
        eval_at_end: Evaluate on ``eval.sets`` after training.
        progress: Show tqdm progress bars.
    """

    output_dir: str = "runs/froster"
    seed: int = 0
    device: str = "auto"
    precision: Literal["bf16", "fp32"] = "bf16"
    grad_checkpointing: bool = False
    log_every_steps: int = 10
    checkpoint_every_steps: Optional[int] = None
    keep_checkpoints: int = 2
    prompt_protocol: Literal["released", "single_template"] = "released"
    max_steps: Optional[int] = None
    eval_at_end: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("log_every_steps", "keep_checkpoints"):
            require_int(self, name)
        require_int(self, "checkpoint_every_steps", optional=True)
        require_int(self, "max_steps", minimum=0, optional=True)  # 0: train nothing


@dataclass
class AveragingConfig:
    """Running mean of the student and projector weights at the end of chosen epochs.

    Attributes:
        enabled: Keep the average and write ``avg.safetensors``.
        start_epoch: First epoch (1-based) whose end-of-epoch weights enter the mean.
        end_epoch: Last such epoch; ``None``: the last epoch.
    """

    enabled: bool = False
    start_epoch: int = 1
    end_epoch: Optional[int] = None

    def __post_init__(self) -> None:
        require_int(self, "start_epoch")
        if self.end_epoch is not None and (not isinstance(self.end_epoch, int) or self.end_epoch < self.start_epoch):
            raise FieldValueError("end_epoch", f"an integer >= averaging.start_epoch ({self.start_epoch}) or null", self.end_epoch)


@dataclass
class PatchingConfig:
    """Open-VCLIP-style weight patching: interpolate the trained weights with the original CLIP's.

    ``patched = (1 - ratio) * trained + ratio * original`` for every weight the student shares
    with CLIP; weights the student adds are kept as trained.

    Attributes:
        ratio: Weight of the original CLIP; ``None`` disables patching.
        source: Which trained weights are patched: ``"average"`` (when averaging) or ``"final"``.
    """

    ratio: Optional[float] = None
    source: Literal["average", "final"] = "average"

    def __post_init__(self) -> None:
        require_number(self, "ratio", high=1.0, optional=True)


@dataclass
class EvalSetConfig:
    """One evaluation dataset.

    Attributes:
        split: ``path label`` split file (relative to ``root``).
        class_names: Class-name file (relative to ``root``); prompts are built from it.
        root: Directory of the videos; ``None``: ``data.root``.
        descriptions: Optional descriptions JSON used instead of the names.
        base_classes: Optional file of base class names (one a line); base, novel and harmonic
            mean accuracies are then reported (each side classified among its own classes).
        group: Sets sharing a group are summarised by their mean and std (e.g. the three K600
            160-class subsets, or the three base-to-novel splits).
    """

    split: str = "test.txt"
    class_names: str = "classes.txt"
    root: Optional[str] = None
    descriptions: Optional[str] = None
    base_classes: Optional[str] = None
    group: Optional[str] = None


@dataclass
class EvalConfig:
    """Evaluation.

    Attributes:
        sets: Evaluation datasets by name.
        batch_size: Videos per forward pass per process.
        num_workers: DataLoader worker processes.
        view_average: Multi-view fusion: ``"probs"`` averages the softmax probabilities of the
            clips (PySlowFast's test ensemble), ``"logits"`` averages the logits.
        ensemble: Average the text features over all templates (else the first template only).
    """

    sets: dict[str, EvalSetConfig] = field(default_factory=dict)
    batch_size: int = 8
    num_workers: int = 4
    view_average: Literal["probs", "logits"] = "probs"
    ensemble: bool = True

    def __post_init__(self) -> None:
        require_int(self, "batch_size")
        require_int(self, "num_workers", minimum=0)


@dataclass
class RunConfig:
    """Every component config of a run, grouped; each component reads only its own."""

    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    averaging: AveragingConfig = field(default_factory=AveragingConfig)
    patching: PatchingConfig = field(default_factory=PatchingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        return from_dict(cls, values)

    @classmethod
    def from_json(cls, text: str, source: str = "run config JSON") -> "RunConfig":
        """From JSON text; ``NaN``/``Infinity``, malformed JSON and bad values raise a :class:`ConfigError`."""
        return cls.from_dict(loads_json(text, source))


__all__ = [
    "AveragingConfig",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "EvalSetConfig",
    "OptimConfig",
    "PatchingConfig",
    "RunConfig",
    "ScheduleConfig",
    "StudentConfig",
    "SyntheticConfig",
    "TeacherConfig",
    "TrainConfig",
]
