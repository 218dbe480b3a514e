"""Pretrain a tiny open_clip CLIP on the world's captioned images: the teacher and the students' start.

The model is open_clip's ``ViT-B-16`` architecture shrunk through open_clip's own config
overrides (2 blocks of width 64 per tower, 8 px patches on 32 px images, a word vocabulary),
trained with CLIP's symmetric contrastive loss. Every batch holds each (shape, colour) object of
the world exactly once, so no caption in a batch is a false negative for another image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from open_vocab_demo import world as W


@dataclass(frozen=True)
class ClipSize:
    """The tiny CLIP's dimensions."""

    embed_dim: int = 64
    width: int = 64
    layers: int = 2
    patch_size: int = 8
    context_length: int = 10

    def overrides(self, image_size: int, vocab_size: int) -> dict[str, Any]:
        """``open_clip.create_model`` keyword overrides of the ``ViT-B-16`` config."""
        return dict(
            embed_dim=self.embed_dim,
            vision_cfg=dict(width=self.width, layers=self.layers, head_width=self.width // 2,
                            patch_size=self.patch_size, image_size=image_size),
            text_cfg=dict(width=self.width, layers=self.layers, heads=2, context_length=self.context_length,
                          vocab_size=vocab_size),
        )


@dataclass(frozen=True)
class PretrainConfig:
    """How long and how fast the CLIP is pretrained."""

    steps: int = 1500
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.1


def build_clip(size: ClipSize, look: W.Look, tokenizer: W.WordTokenizer, seed: int) -> torch.nn.Module:
    """A randomly initialised tiny CLIP (``seed`` fixes the initialisation)."""
    import open_clip

    torch.manual_seed(seed)
    return open_clip.create_model("ViT-B-16", pretrained=None, **size.overrides(look.image_size, tokenizer.vocab_size))


def _objects(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (shape, colour) object once, in random order: (64,) shapes and colours."""
    order = torch.randperm(len(W.SHAPES) * len(W.COLOURS), generator=generator)
    return order // len(W.COLOURS), order % len(W.COLOURS)


def pretrain(clip: torch.nn.Module, tokenizer: W.WordTokenizer, config: PretrainConfig, look: W.Look, seed: int,
             progress: bool = True) -> dict[str, float]:
    """Train ``clip`` in place with CLIP's contrastive loss on freshly drawn captioned images.

    Returns:
        ``{"pretrain_loss": last loss, "pretrain_image_acc": image-to-caption top-1 (%) over all
        objects on fresh images}``.
    """
    generator = torch.Generator().manual_seed(seed)
    decay = [p for p in clip.parameters() if p.ndim >= 2]
    no_decay = [p for p in clip.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)

    def lr_at(step: int) -> float:  # linear warm-up, then cosine to zero
        if step < config.warmup:
            return config.lr * (step + 1) / config.warmup
        return 0.5 * config.lr * (1 + math.cos(math.pi * (step - config.warmup) / max(1, config.steps - config.warmup)))

    clip.train()
    loss = torch.zeros(())
    for step in tqdm(range(config.steps), desc="pretrain CLIP", disable=not progress, leave=False):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        images, captions = W.captioned_images(*_objects(generator), generator, look)
        image_features = F.normalize(clip.encode_image(images), dim=-1)  # (N, D)
        text_features = F.normalize(clip.encode_text(tokenizer(captions)), dim=-1)  # (N, D)
        logits = clip.logit_scale.exp() * image_features @ text_features.T  # (N, N)
        target = torch.arange(logits.shape[0])
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, math.log(100))
    clip.eval()
    return {"pretrain_loss": float(loss.detach()), "pretrain_image_acc": image_accuracy(clip, tokenizer, look, seed + 1)}


@torch.no_grad()
def image_accuracy(clip: torch.nn.Module, tokenizer: W.WordTokenizer, look: W.Look, seed: int, rounds: int = 4) -> float:
    """Top-1 (%) of fresh images against the 64 object prompts of :data:`world.CLASS_TEMPLATE`."""
    generator = torch.Generator().manual_seed(seed)
    shapes = torch.arange(len(W.SHAPES)).repeat_interleave(len(W.COLOURS))
    colours = torch.arange(len(W.COLOURS)).repeat(len(W.SHAPES))
    prompts = [W.caption(s, c, len(W.CAPTION_TEMPLATES) - 1) for s, c in zip(shapes.tolist(), colours.tolist())]
    text = F.normalize(clip.encode_text(tokenizer(prompts)), dim=-1)  # (64, D)
    correct = 0
    for _ in range(rounds):
        images, _ = W.captioned_images(shapes, colours, generator, look)
        predicted = (F.normalize(clip.encode_image(images), dim=-1) @ text.T).argmax(dim=-1)
        correct += int((predicted == torch.arange(len(prompts))).sum())
    return 100.0 * correct / (rounds * len(prompts))
