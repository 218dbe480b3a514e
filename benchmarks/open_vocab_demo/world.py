"""A small visual world of coloured shapes, its captions, and action videos made from it.

Every frame shows one object, a shape in a colour, over a noisy grey background. A caption names
the object ("a photo of a red square"), the way web captions name what a photo shows; the CLIP
pretrained on those pairs (:mod:`pretrain`) therefore recognises every shape and colour from a
single frame, like CLIP recognises "surfing" from a surfboard.

An *action* is such an object (its static cue, named in the class prompt) moving along its own
trajectory (its motion cue, which no single frame shows), in a scene with static clutter. The
:class:`World` has base classes (trained on, few shots each) and two sets of novel ones (never
trained on), one per regime:

* ``unseen``: the novel actions use shapes and colours that no base video shows. Base training
  never exercises them; only the pretraining knows them.
* ``recombined``: every shape and colour of a novel action appears in some base action; only the
  combinations are new.

Everything is drawn from ``torch.Generator`` objects, so a seed fixes every pixel.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

SHAPES = ("square", "circle", "triangle", "cross", "ring", "diamond", "bar", "star")
COLOURS = {
    "red": (0.95, 0.10, 0.10),
    "green": (0.10, 0.80, 0.10),
    "blue": (0.15, 0.25, 1.00),
    "yellow": (0.95, 0.90, 0.10),
    "cyan": (0.10, 0.90, 0.90),
    "magenta": (0.90, 0.10, 0.90),
    "orange": (1.00, 0.55, 0.05),
    "white": (1.00, 1.00, 1.00),
}
COLOUR_NAMES = tuple(COLOURS)
# Caption templates of the pretraining pairs; the class prompt of a video is the last one.
CAPTION_TEMPLATES = ("a {}", "a photo of a {}", "a picture of a {}", "a video of a {}")
CLASS_TEMPLATE = CAPTION_TEMPLATES[-1]
# CLIP's pixel normalisation, so frames look like what a CLIP pipeline feeds its model.
PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)


def _mask_fns() -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """Shape masks in object coordinates ``u, v`` (the object spans [-1, 1] on both axes)."""
    return {
        "square": lambda u, v: torch.maximum(u.abs(), v.abs()) <= 0.8,
        "circle": lambda u, v: u * u + v * v <= 0.9,
        "triangle": lambda u, v: (v <= 0.9) & (v >= -0.9) & (u.abs() <= (0.9 - v) / 1.8),
        "cross": lambda u, v: ((u.abs() <= 0.3) & (v.abs() <= 1)) | ((v.abs() <= 0.3) & (u.abs() <= 1)),
        "ring": lambda u, v: ((u * u + v * v) <= 1.0) & ((u * u + v * v) >= 0.35),
        "diamond": lambda u, v: u.abs() + v.abs() <= 1.0,
        "bar": lambda u, v: (u.abs() <= 1.0) & (v.abs() <= 0.35),
        "star": lambda u, v: (((u - v).abs() <= 0.4) | ((u + v).abs() <= 0.4)) & (u.abs() <= 0.95) & (v.abs() <= 0.95),
    }


_MASKS = _mask_fns()


@dataclass(frozen=True)
class Action:
    """One action class: a static cue (shape and colour) and a motion cue (velocity in px/frame)."""

    shape: int
    colour: int
    velocity: tuple[float, float]

    @property
    def name(self) -> str:
        """The class name the prompts use: the static cue's words ("red square")."""
        return f"{COLOUR_NAMES[self.colour]} {SHAPES[self.shape]}"

    @property
    def prompt(self) -> str:
        return CLASS_TEMPLATE.format(self.name)


@dataclass(frozen=True)
class World:
    """The actions of the world: 8 base classes and two sets of 8 novel classes.

    Base actions combine shapes 0-3 with colours 0-3 where shape + colour is even, so each shape
    comes in two colours and each colour on two shapes: neither names a class alone.

    * ``unseen``: shapes 4-7 with colours 4-7, paired the same way. No base video shows any of
      these shapes or colours: base training never exercises them, only the pretraining knows them.
    * ``recombined``: shapes 0-3 with colours 0-3 where shape + colour is odd. Every shape and
      colour is one the base videos show; only the combinations are new.

    Both novel sets are evaluated on the same fine-tuned models: the two regimes share the training.
    """

    base: tuple[Action, ...]
    unseen: tuple[Action, ...]
    recombined: tuple[Action, ...]

    def novel_sets(self) -> dict[str, tuple[Action, ...]]:
        return {name: getattr(self, name) for name in NOVEL_SETS}


NOVEL_SETS = ("unseen", "recombined")


def _velocity(index: int, speed: float = 2.5) -> tuple[float, float]:
    """The motion cue of the ``index``-th action: one of 8 compass directions at ``speed`` px/frame."""
    angle = 2 * math.pi * (index % 8) / 8
    return (round(speed * math.cos(angle), 3), round(speed * math.sin(angle), 3))


def _actions(pairs: Sequence[tuple[int, int]]) -> tuple[Action, ...]:
    return tuple(Action(s, c, _velocity(i)) for i, (s, c) in enumerate(pairs))


def make_world() -> World:
    """The base actions and both novel sets (see :class:`World`)."""
    base = [(s, c) for s in range(4) for c in range(4) if (s + c) % 2 == 0]
    recombined = [(s, c) for s in range(4) for c in range(4) if (s + c) % 2 == 1]
    return World(_actions(base), _actions([(s + 4, c + 4) for s, c in base]), _actions(recombined))


# ---- text ---------------------------------------------------------------------------------------


class WordTokenizer:
    """Word-level tokenizer over the world's vocabulary, shaped like open_clip's output.

    ``<sot> words... <eot> <pad>...``; ``<eot>`` has the largest id, which is where open_clip's
    ``argmax`` text pooling reads the sentence feature. A word outside the vocabulary is an error:
    in a closed world it can only be a typo.
    """

    def __init__(self, context_length: int = 10):
        words = sorted({w for t in CAPTION_TEMPLATES for w in t.replace("{}", "").split()} | set(SHAPES) | set(COLOURS))
        self.vocab = ("<pad>", *words, "<sot>", "<eot>")
        self.ids = {w: i for i, w in enumerate(self.vocab)}
        self.context_length = context_length

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __call__(self, texts: Sequence[str] | str) -> torch.Tensor:
        """``K`` texts -> (K, context_length) token ids."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokens = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            words = re.findall(r"[a-z]+", text.lower())
            unknown = [w for w in words if w not in self.ids]
            if unknown:
                raise ValueError(f"words {unknown} of {text!r} are not in the world's vocabulary {self.vocab}")
            ids = [self.ids["<sot>"], *(self.ids[w] for w in words), self.ids["<eot>"]]
            if len(ids) > self.context_length:
                raise ValueError(f"{text!r} needs {len(ids)} tokens, more than context_length={self.context_length}")
            tokens[row, : len(ids)] = torch.tensor(ids)
        return tokens


def caption(shape: int, colour: int, template: int) -> str:
    return CAPTION_TEMPLATES[template].format(f"{COLOUR_NAMES[colour]} {SHAPES[shape]}")


# ---- pixels -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """How frames are drawn: image size, object size range (radius, px), noise, and video clutter.

    ``clutter`` dark grey shapes stand still in every video (never in the pretraining images,
    which, like web photos, are centred on what their caption names): the video domain differs
    from the pretraining one, so the frozen CLIP is imperfect on videos and fine-tuning has
    something to learn on base classes, as with real videos.
    """

    image_size: int = 32
    radius: tuple[float, float] = (6.0, 9.0)
    pixel_noise: float = 0.08
    colour_jitter: float = 0.08
    clutter: int = 2


def _shape_mask(shapes: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) boolean masks of N shapes centred at ``centres`` (N, 2) with half-sizes ``radii`` (N,)."""
    n = shapes.shape[0]
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    u = (grid.view(1, 1, size) - centres[:, 0].view(n, 1, 1)) / radii.view(n, 1, 1)  # (N, 1, W)
    v = (grid.view(1, size, 1) - centres[:, 1].view(n, 1, 1)) / radii.view(n, 1, 1)  # (N, H, 1)
    u, v = u.expand(n, size, size), v.expand(n, size, size)
    mask = torch.zeros(n, size, size, dtype=torch.bool)
    for index, name in enumerate(SHAPES):
        rows = shapes == index
        if rows.any():
            mask[rows] = _MASKS[name](u[rows], v[rows])
    return mask


def render(shapes: torch.Tensor, colours: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
           backgrounds: torch.Tensor, generator: torch.Generator, look: Look,
           clutter: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Draw N images, CLIP-normalised.

    Args:
        shapes, colours: (N,) indices into :data:`SHAPES` and :data:`COLOURS`.
        centres: (N, 2) object centres (x, y) in pixels.
        radii: (N,) object half-sizes in pixels.
        backgrounds: (N,) grey level of each image's background.
        clutter: (N, H, W) grey levels of clutter drawn under the object, NaN where there is none.

    Returns:
        (N, 3, H, W) images.
    """
    n, size = shapes.shape[0], look.image_size
    mask = _shape_mask(shapes, centres, radii, size)  # (N, H, W)
    palette = torch.tensor(list(COLOURS.values()))  # (8, 3)
    rgb = palette[colours] + look.colour_jitter * torch.randn(n, 3, generator=generator)  # (N, 3)
    images = backgrounds.view(n, 1, 1, 1).expand(n, 3, size, size).clone()
    if clutter is not None:
        images = torch.where(clutter.isnan().unsqueeze(1), images, clutter.unsqueeze(1))
    images = torch.where(mask.unsqueeze(1), rgb.view(n, 3, 1, 1), images)
    images = images + look.pixel_noise * torch.randn(images.shape, generator=generator)
    images = images.clamp(0, 1)
    mean, std = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def captioned_images(shapes: torch.Tensor, colours: torch.Tensor, generator: torch.Generator,
                     look: Look = Look()) -> tuple[torch.Tensor, list[str]]:
    """Images of the given objects at random places and sizes, with random-template captions.

    Returns:
        (N, 3, H, W) images and their N captions.
    """
    n, size = shapes.shape[0], look.image_size
    radii = _uniform(n, *look.radius, generator)
    centres = radii.view(n, 1) + torch.rand(n, 2, generator=generator) * (size - 2 * radii.view(n, 1))
    images = render(shapes, colours, centres, radii, _uniform(n, 0.25, 0.6, generator), generator, look)
    templates = torch.randint(len(CAPTION_TEMPLATES), (n,), generator=generator).tolist()
    return images, [caption(s, c, t) for s, c, t in zip(shapes.tolist(), colours.tolist(), templates)]


def videos(actions: Sequence[Action], per_class: int, frames: int, generator: torch.Generator,
           look: Look = Look()) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` videos of every action: the object moves by its velocity, bouncing off the edges.

    Returns:
        (N, 3, T, H, W) videos and (N,) labels (the action's index in ``actions``), N = K * per_class.
    """
    labels = torch.arange(len(actions)).repeat_interleave(per_class)  # (N,)
    n, size = labels.shape[0], look.image_size
    shapes = torch.tensor([actions[i].shape for i in labels])
    colours = torch.tensor([actions[i].colour for i in labels])
    velocity = torch.tensor([actions[i].velocity for i in labels])  # (N, 2)
    radii = _uniform(n, *look.radius, generator)
    low, high = radii.view(n, 1), size - radii.view(n, 1)
    start = low + torch.rand(n, 2, generator=generator) * (high - low)
    speed = _uniform(n, 0.8, 1.2, generator).view(n, 1)
    t = torch.arange(frames, dtype=torch.float32).view(1, frames, 1)
    # Bounce: reflect the straight path into [low, high] (a triangle wave of period 2 * span).
    span = (high - low).unsqueeze(1)
    travelled = (start - low).unsqueeze(1) + speed.unsqueeze(1) * velocity.unsqueeze(1) * t  # (N, T, 2)
    phase = torch.remainder(travelled, 2 * span)
    centres = low.unsqueeze(1) + torch.where(phase <= span, phase, 2 * span - phase)  # (N, T, 2)
    background = _uniform(n, 0.25, 0.6, generator)
    clutter = torch.full((n, size, size), float("nan"))
    for _ in range(look.clutter):  # static dark shapes of any kind, anywhere
        kinds = torch.randint(len(SHAPES), (n,), generator=generator)
        clutter_radii = _uniform(n, *look.radius, generator)
        where = clutter_radii.view(n, 1) + torch.rand(n, 2, generator=generator) * (size - 2 * clutter_radii.view(n, 1))
        clutter = torch.where(_shape_mask(kinds, where, clutter_radii, size), _uniform(n, 0.0, 0.15, generator).view(n, 1, 1), clutter)
    images = render(
        shapes.repeat_interleave(frames), colours.repeat_interleave(frames), centres.reshape(n * frames, 2),
        radii.repeat_interleave(frames), background.repeat_interleave(frames), generator, look,
        clutter.repeat_interleave(frames, dim=0),
    )  # (N*T, 3, H, W)
    return images.view(n, frames, 3, size, size).transpose(1, 2).contiguous(), labels  # (N, 3, T, H, W)
