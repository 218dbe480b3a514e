"""Class prompts: the 28 video templates, training-time sampling and the test-time ensemble.

The paper turns each class text -- the class name, or better its one-sentence LLM description
(:func:`froster.data.classes.read_descriptions`) -- into prompts with the 28 video templates CLIP
published for Kinetics-700 (4 openings x 7 phrasings, "a video of a person {}." among them) plus
the bare text itself. In training, one template is drawn per step and applied to every class; at
test time the text features of all 29 prompt sets are L2-normalised, averaged and renormalised.

The templates keep CLIP's wording, including its "a example of": prompt ensembles are tuned to a
text encoder, and changing a word changes the features the reported numbers came from.

A frozen teacher's text features depend only on the prompt set, so a training loop can encode
``all_prompts(texts)`` once, keep the ``(29, K, D)`` result, and index it with
:func:`sample_template_index` instead of re-encoding every step.
"""
from __future__ import annotations

import random
from typing import Callable, Optional, Sequence

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


def apply_template(template: str, class_texts: Sequence[str]) -> list[str]:
    """``template`` filled with each class text: ``K`` prompts."""
    return [template.format(text) for text in class_texts]


def all_prompts(class_texts: Sequence[str], templates: Sequence[str] = ALL_TEMPLATES) -> list[list[str]]:
    """Every prompt set: ``len(templates)`` rows (29 by default) of ``K`` prompts.

    Args:
        class_texts: Class names or descriptions, in class order.
        templates: Format strings with one ``{}``; the paper's 28 plus the bare text by default.
    """
    return [apply_template(template, class_texts) for template in templates]


def sample_template_index(rng: Optional[random.Random] = None, num_templates: int = len(ALL_TEMPLATES)) -> int:
    """A uniformly random template index (the bare text is one of the choices by default).

    Args:
        rng: Random source; the ``random`` module's global one when None.
        num_templates: How many templates to choose from.
    """
    return (rng or random).randrange(num_templates)


def sample_prompts(
    class_texts: Sequence[str],
    rng: Optional[random.Random] = None,
    templates: Sequence[str] = ALL_TEMPLATES,
) -> list[str]:
    """One random template applied to every class, as for one training step: ``K`` prompts.

    Args:
        class_texts: Class names or descriptions, in class order.
        rng: Random source; the ``random`` module's global one when None.
        templates: Templates to draw from.
    """
    return apply_template(templates[sample_template_index(rng, len(templates))], class_texts)


def ensemble_text_features(
    encode_fn: Callable[[list[str]], torch.Tensor],
    prompts_by_template: Sequence[Sequence[str]],
) -> torch.Tensor:
    """Average the normalised text features of several prompt sets, then renormalise.

    ``features = normalize(mean_j(normalize(encode_fn(prompts_by_template[j]))))``

    Runs with gradients when ``encode_fn`` does; wrap the call in ``torch.no_grad()`` for evaluation.

    Args:
        encode_fn: ``K`` prompts -> ``(K, D)`` features (e.g. tokenise then ``encode_text``).
        prompts_by_template: ``J`` rows of ``K`` prompts, as :func:`all_prompts` returns.

    Returns:
        ``(K, D)`` unit-norm float32 class features.
    """
    if not prompts_by_template:
        raise ValueError("need at least one prompt set")
    sizes = {len(prompts) for prompts in prompts_by_template}
    if len(sizes) != 1:
        raise ValueError(f"every prompt set must have one prompt per class, got sizes {sorted(sizes)}")
    total = None
    for prompts in prompts_by_template:
        features = F.normalize(encode_fn(list(prompts)).float(), dim=-1)  # (K, D)
        total = features if total is None else total + features
    return F.normalize(total / len(prompts_by_template), dim=-1)  # (K, D)
