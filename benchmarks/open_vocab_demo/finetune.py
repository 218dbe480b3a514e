"""Fine-tune the pretrained CLIP on base actions through froster's students and distiller.

Every method is one :class:`froster.ResidualDistiller` configuration around the same student
built from the same pretrained CLIP, trained by the same loop; only ``DistillConfig`` differs:

* ``finetune``: beta = 0, the cross-entropy alone (the distillation terms are not computed).
* ``froster``: alpha = 0.1, beta = 2, cosine loss, per-frame video distillation and text
  distillation through the residual projectors (the paper's setting).
* ``distill``: the same with alpha = 0: ``z' = z + 0 * proj(z) = z``, plain feature distillation
  without the residual projector.

The learning rate warms up linearly over the first epoch and then stays constant, so the state
after ``E`` epochs of a longer run *is* the ``E``-epoch run: one run per method and learning rate
gives every epoch cell of the grid, and the novel-accuracy curve along the way.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch
from tqdm.auto import tqdm

import froster
from froster.teachers import ModuleTeacher

from open_vocab_demo.datasets import Data, VideoSet


@dataclass(frozen=True)
class Method:
    """A fine-tuning method: a name and its ``DistillConfig`` fields."""

    name: str
    distill: dict[str, Any]
    label: str


METHODS = (
    # beta = 0 makes the distillation terms weightless; switching them off as well skips the
    # teacher's forward pass, which changes nothing in the loss or its gradients.
    Method("finetune", dict(beta=0.0, distill_video=False, distill_text=False), "fine-tune (beta=0)"),
    Method("froster", dict(alpha=0.1, beta=2.0, kind="cosine", video_target="frames"), "FROSTER (alpha=0.1, beta=2)"),
    Method("distill", dict(alpha=0.0, beta=2.0, kind="cosine", video_target="frames"), "distillation, no projector (alpha=0)"),
)
FROZEN = "frozen_clip"


@dataclass(frozen=True)
class TrainConfig:
    """The loop's settings (the grid's learning rates and epochs come from the caller)."""

    batch: int = 16
    weight_decay: float = 0.01
    grad_clip: float = 1.0


@dataclass
class RunResult:
    """Accuracies (%) of one run at step 0 and at the evaluated epochs (see :func:`evaluate`)."""

    method: str
    lr: Optional[float]
    curve: list[dict[str, float]] = field(default_factory=list)


def harmonic_mean(base: float, novel: float) -> float:
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


@torch.no_grad()
def accuracy(model: froster.ResidualDistiller, data: VideoSet, batch: int = 64) -> float:
    """Top-1 (%) of ``model.predict`` over ``data`` against its own class prompts."""
    correct = 0
    for start in range(0, data.labels.shape[0], batch):
        logits = model.predict(data.videos[start:start + batch], data.prompts)  # (B, K)
        correct += int((logits.argmax(dim=-1) == data.labels[start:start + batch]).sum())
    return 100.0 * correct / data.labels.shape[0]


def evaluate(model: froster.ResidualDistiller, data: Data) -> dict[str, float]:
    """``{"base": %, "novel_<set>": %, "hm_<set>": harmonic mean of base and that novel set}``."""
    was_training = model.training
    model.eval()
    scores = {"base": accuracy(model, data.base_test)}
    for name, videos in data.novel_tests.items():
        scores[f"novel_{name}"] = accuracy(model, videos)
        scores[f"hm_{name}"] = harmonic_mean(scores["base"], scores[f"novel_{name}"])
    model.train(was_training)
    return scores


def make_teacher(clip: torch.nn.Module, tokenizer) -> ModuleTeacher:
    """The frozen teacher: a copy of the pretrained CLIP (the original stays the students' start)."""
    return ModuleTeacher(copy.deepcopy(clip), tokenizer=tokenizer)


def build(student: str, clip: torch.nn.Module, teacher: ModuleTeacher, tokenizer, frames: int,
          distill: dict[str, Any]) -> froster.ResidualDistiller:
    """A registered student built on a copy of the pretrained CLIP, inside a distiller."""
    model = froster.build_student(student, clip=copy.deepcopy(clip), num_frames=frames, tokenizer=tokenizer)
    return froster.ResidualDistiller(model, teacher, **distill)


NO_DISTILLATION = dict(beta=0.0, distill_video=False, distill_text=False)


def untrained(student: str, clip: torch.nn.Module, teacher: ModuleTeacher, tokenizer, data: Data, frames: int) -> dict[str, float]:
    """Scores of the student before any training: the start of every method's curve."""
    return evaluate(build(student, clip, teacher, tokenizer, frames, NO_DISTILLATION), data)


def zero_shot(clip: torch.nn.Module, teacher: ModuleTeacher, tokenizer, data: Data, frames: int) -> dict[str, float]:
    """The frozen CLIP: every frame through CLIP's image encoder, features averaged (ViFi-CLIP's
    head with CLIP's weights), no training."""
    return evaluate(build("vificlip", clip, teacher, tokenizer, frames, NO_DISTILLATION), data)


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    # The paper's recipe: AdamW, no weight decay on 1-D parameters (norms, biases, logit scale).
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=lr)


def train(method: Method, student: str, clip: torch.nn.Module, teacher: ModuleTeacher, tokenizer, data: Data,
          lr: float, epochs: int, eval_epochs: Sequence[int], config: TrainConfig, seed: int,
          initial: Optional[dict[str, float]] = None, progress: bool = True) -> RunResult:
    """Train one method for ``epochs`` on the base shots; evaluate at step 0 and at ``eval_epochs``.

    Args:
        initial: The untrained student's scores, when already known (they are the same for
            every method and learning rate of a seed); evaluated here otherwise.

    Returns:
        The accuracy curve; each point also holds ``epoch`` and ``step``.
    """
    torch.manual_seed(seed)  # projector initialisation
    frames = data.train.videos.shape[2]
    model = build(student, clip, teacher, tokenizer, frames, method.distill)
    optimizer = _optimizer(model, lr, config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    n = data.train.labels.shape[0]
    steps_per_epoch = -(-n // config.batch)
    result = RunResult(method.name, lr, [{"epoch": 0, "step": 0, **(initial or evaluate(model, data))}])
    model.train()
    step = 0
    bar = tqdm(total=epochs * steps_per_epoch, desc=f"{method.name} lr={lr:g}", disable=not progress, leave=False)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch):
            for group in optimizer.param_groups:  # linear warm-up over the first epoch, then constant
                group["lr"] = lr * min(1.0, (step + 1) / steps_per_epoch)
            rows = order[start:start + config.batch]
            out = model(data.train.videos[rows], data.train.prompts, labels=data.train.labels[rows])
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            bar.update()
        if epoch in eval_epochs:
            result.curve.append({"epoch": epoch, "step": step, **evaluate(model, data)})
    bar.close()
    return result
