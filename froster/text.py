"""Class prompts: the 28 video templates, the released training protocol and the test-time ensemble.

Each class is its name and, in the paper's final model, a one-sentence description written by an
LLM (:func:`froster.data.classes.read_descriptions`). The released FROSTER code turns a class into
prompts with the 28 video templates CLIP published for Kinetics-700 (4 openings x 7 phrasings,
"a video of a person {}." among them), each filled with the class *name* and followed by the
class's entry ``"<name>: <description>"``, plus the bare entry itself as a 29th prompt set::

    "a video of a person abseiling. abseiling: A person descends a rock face on a rope."
    "abseiling: A person descends a rock face on a rope."

Without descriptions the entry is the name, and a template prompt is just the filled template.

* Training, every step (:func:`training_prompt_sets`, ``protocol="released"``): one of the 28
  templates drawn at random, and the bare entry: two prompt sets, each encoded and
  L2-normalised, averaged, normalised again, on the student's and the teacher's side alike.
  ``protocol="single_template"`` draws one of the 29 sets instead.
* Evaluation (:func:`evaluation_prompt_sets`): all 29 sets, averaged the same way
  (:func:`ensemble_features`).

The templates keep CLIP's wording, including its "a example of": prompt ensembles are tuned to a
text encoder, and changing a word changes the features the reported numbers came from.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

_OPENINGS = ("a photo of", "a video of", "a example of", "a demonstration of")
_PHRASINGS = ("{}.", "a person {}.", "a person using {}.", "a person doing {}.", "a person during {}.",
              "a person performing {}.", "a person practicing {}.")

# CLIP's Kinetics-700 templates, in CLIP's order: every phrasing for "a photo of", then "a video
# of", ...
VIDEO_TEMPLATES: tuple[str, ...] = tuple(f"{opening} {phrasing}" for opening in _OPENINGS for phrasing in _PHRASINGS)
BARE_TEMPLATE = "{}"
# The prompt sets of the paper: the 28 templates, then the bare class text.
ALL_TEMPLATES: tuple[str, ...] = VIDEO_TEMPLATES + (BARE_TEMPLATE,)


PROMPT_PROTOCOLS = ("released", "single_template")


@dataclass(frozen=True)
class ClassText:
    """What stands for one class in prompts.

    Attributes:
        name: The class name (``"abseiling"``).
        description: Its one-sentence description, or ``None``.
    """

    name: str
    description: Optional[str] = None

    @property
    def entry(self) -> str:
        """The bare prompt: ``"<name>: <description>"``, or the name alone."""
        return f"{self.name}: {self.description}" if self.description else self.name

    def prompt(self, template: str) -> str:
        """``template`` filled with the name, then the entry (the name alone when there is no description)."""
        if template == BARE_TEMPLATE:
            return self.entry
        filled = template.format(self.name)
        return f"{filled} {self.entry}" if self.description else filled


def class_texts_from(names: Sequence[str], descriptions: Optional[Sequence[str]] = None) -> list[ClassText]:
    """:class:`ClassText` of every class, in class order."""
    if descriptions is not None and len(descriptions) != len(names):
        raise ValueError(f"got {len(descriptions)} descriptions for {len(names)} class names")
    return [ClassText(name, None if descriptions is None else descriptions[i]) for i, name in enumerate(names)]


def prompt_set(template: str, classes: Sequence[ClassText]) -> list[str]:
    """One prompt per class with ``template``: ``K`` prompts."""
    return [c.prompt(template) for c in classes]


def training_prompt_sets(classes: Sequence[ClassText], rng: random.Random, protocol: str = "released") -> list[list[str]]:
    """The prompt sets of one training step.

    Args:
        classes: The ``K`` classes.
        rng: Random source of the template draw.
        protocol: ``"released"``: one of the 28 templates and the bare entry (two sets, to be
            ensembled); ``"single_template"``: one of the 29 sets.
    """
    if protocol == "released":
        template = VIDEO_TEMPLATES[rng.randrange(len(VIDEO_TEMPLATES))]
        return [prompt_set(template, classes), prompt_set(BARE_TEMPLATE, classes)]
    if protocol == "single_template":
        return [prompt_set(ALL_TEMPLATES[rng.randrange(len(ALL_TEMPLATES))], classes)]
    raise ValueError(f"protocol must be one of {PROMPT_PROTOCOLS}, got {protocol!r}")


def evaluation_prompt_sets(classes: Sequence[ClassText], ensemble: bool = True) -> list[list[str]]:
    """The 29 prompt sets of the test-time ensemble (``ensemble=False``: the first template only)."""
    return [prompt_set(template, classes) for template in (ALL_TEMPLATES if ensemble else ALL_TEMPLATES[:1])]


def ensemble_features(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Combine the ``(K, D)`` features of several prompt sets of the same classes.

    ``direction = normalize(mean_j normalize(f_j))``, the released code's ensemble. Its length is
    the mean length of the raw ``f_j``, so heads that are not scale-invariant (X-CLIP's prompt
    generator adds to the raw text features) see features of the usual size; cosine heads and the
    distillation, which normalise, are unaffected. One set is returned as it is.
    """
    if not features:
        raise ValueError("need the features of at least one prompt set")
    if len(features) == 1:
        return features[0]
    stacked = torch.stack(list(features))  # (J, K, D)
    direction = F.normalize(F.normalize(stacked, dim=-1).mean(dim=0), dim=-1)  # (K, D)
    return direction * stacked.norm(dim=-1).mean(dim=0, keepdim=False)[:, None]


__all__ = [
    "ALL_TEMPLATES",
    "BARE_TEMPLATE",
    "PROMPT_PROTOCOLS",
    "VIDEO_TEMPLATES",
    "ClassText",
    "class_texts_from",
    "ensemble_features",
    "evaluation_prompt_sets",
    "prompt_set",
    "training_prompt_sets",
]
