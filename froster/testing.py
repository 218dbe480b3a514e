"""Tiny models and synthetic inputs for tests, examples and the CPU benchmark default.

Nothing here downloads anything: the tiny CLIP is an open_clip ``ViT-B-16`` config shrunk through
open_clip's own config overrides, with random weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch

if TYPE_CHECKING:
    from open_clip import CLIP

TINY_CLIP_NAME = "ViT-B-16"
TINY_IMAGE_SIZE = 32
TINY_CONTEXT_LENGTH = 16


def tiny_clip_overrides(embed_dim: int = 32, width: int = 64, layers: int = 2, image_size: int = TINY_IMAGE_SIZE) -> dict[str, Any]:
    """open_clip ``create_model`` overrides for a ViT with 2 blocks, 2 heads and 2x2 patches of 16 px."""
    return dict(
        embed_dim=embed_dim,
        vision_cfg=dict(width=width, layers=layers, head_width=width // 2, patch_size=16, image_size=image_size),
        text_cfg=dict(width=width, layers=layers, heads=2, context_length=TINY_CONTEXT_LENGTH),
    )


def tiny_student_kwargs(num_frames: int = 4, **overrides) -> dict[str, Any]:
    """Keyword arguments for ``build_student(name, **kwargs)`` that build a tiny random student."""
    return dict(clip=TINY_CLIP_NAME, pretrained=None, num_frames=num_frames, **tiny_clip_overrides(**overrides))


def synthetic_video(batch: int = 2, frames: int = 4, size: int = TINY_IMAGE_SIZE, seed: Optional[int] = 0) -> torch.Tensor:
    """A random, CLIP-normalised-looking video batch, (B, 3, T, H, W)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(batch, 3, frames, size, size, generator=generator)


TINY_CLASS_NAMES = ("juggling", "abseiling", "surfing", "archery", "knitting")


def tiny_prompts(num_classes: int = 5) -> list[str]:
    """Class prompts in the paper's template style."""
    names = [TINY_CLASS_NAMES[i % len(TINY_CLASS_NAMES)] + ("" if i < len(TINY_CLASS_NAMES) else f" {i}") for i in range(num_classes)]
    return [f"a video of a person {name}." for name in names]


def tiny_build_kwargs(name: str, num_frames: int = 4, *, image_size: int = TINY_IMAGE_SIZE, **options: Any) -> dict[str, Any]:
    """Keyword arguments that build a tiny random student ``name``, ``options`` on top.

    A student whose own parts need other tiny arguments sets ``tiny_kwargs`` on its builder (a
    class attribute, or an attribute of the builder function): a dict merged over
    :func:`tiny_student_kwargs`, or a callable ``tiny_kwargs(num_frames) -> dict`` that replaces it.
    """
    from froster.registry import get_student_builder

    extra = getattr(get_student_builder(name), "tiny_kwargs", None)
    if callable(extra):
        kwargs = dict(extra(num_frames))
    else:
        kwargs = {**tiny_student_kwargs(num_frames, image_size=image_size), **(extra or {})}
    kwargs.update(options)
    return kwargs


class _OpenAIArchiveModule(torch.nn.Module):
    """CLIP as OpenAI's archives hold it: CLIP's weights at the top level plus three hyper-parameter entries."""

    def __init__(self, clip: CLIP, image_size: int, context_length: int, vocab_size: int):
        super().__init__()
        for name, child in clip.named_children():
            self.add_module(name, child)
        for name, param in clip.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in clip.named_buffers(recurse=False):
            self.register_buffer(name, buffer, persistent=name not in clip._non_persistent_buffers_set)
        self._clip = [clip]  # a list keeps it out of the module tree and the state dict
        self.register_buffer("input_resolution", torch.tensor(image_size))
        self.register_buffer("context_length", torch.tensor(context_length))
        self.register_buffer("vocab_size", torch.tensor(vocab_size))

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        clip = self._clip[0]
        image_features = torch.nn.functional.normalize(clip.encode_image(image), dim=-1)
        text_features = torch.nn.functional.normalize(clip.encode_text(text), dim=-1)
        return clip.logit_scale.exp() * image_features @ text_features.t()  # (N, K)


def write_openai_archive(path, clip: CLIP, tokenizer) -> None:
    """Save ``clip`` as OpenAI published CLIP: a TorchScript archive of the model traced on (image, text).

    The archive's state dict is CLIP's, plus ``input_resolution``, ``context_length`` and
    ``vocab_size``; its code declares the MLP activation class (``QuickGELU`` for OpenAI's models).
    """
    import warnings

    size = int(clip.visual.image_size[0])
    archive = _OpenAIArchiveModule(clip, size, int(clip.context_length), int(clip.vocab_size)).eval()
    inputs = (torch.zeros(1, 3, size, size), tokenizer(["a photo"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings of torch.jit
        traced = torch.jit.trace(archive, inputs, strict=False, check_trace=False)
        torch.jit.save(traced, str(path))
