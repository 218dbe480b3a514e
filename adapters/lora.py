"""LoRA-CLIP student: low-rank adapters on CLIP's attention and MLP through peft, CLIP frozen.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022. Every targeted
linear layer computes ``W x + (alpha / rank) B A dropout(x)`` with ``A`` (rank, in) and ``B``
(out, rank) trainable and ``W`` frozen. Frames are encoded independently and the default head
(cosine similarity of the time-averaged frame feature) classifies, as in ViFi-CLIP.

The adapters are injected with peft's ``get_peft_model``. CLIP's ``nn.MultiheadAttention`` blocks
are first rewritten as :class:`~froster.adapters.lora_attention.LinearMultiheadAttention` (same
weights, two ``nn.Linear``), because peft 0.21's own attention wrapper applies the ``out_proj``
delta twice; see that module. :meth:`LoraCLIP.merge` folds the adapters into the weights and
packs the attention back, leaving plain CLIP keys and CLIP's forward.

``logit_scale`` stays frozen by default: the pretrained temperature is part of the frozen model,
and "only the adapters train" then holds literally. ``train_logit_scale=True`` unfreezes it.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Union

import torch.nn as nn

from froster.clip_loading import PathLike, create_open_clip
from froster.registry import register_student

from ._clip_video import ClipVideoStudent
from .lora_attention import split_attention, unsplit_attention

__all__ = ["LoraCLIP", "LoraSettings", "DEFAULT_TARGETS", "TOWERS", "lora_target_names"]

TOWERS = ("vision", "text")
# Module names relative to a residual block of open_clip's transformers; "attn" means both projections.
DEFAULT_TARGETS = ("attn.in_proj", "attn.out_proj", "mlp.c_fc", "mlp.c_proj")
_BLOCK_NAME = re.compile(r"(?P<tower>.+?)\.resblocks\.(?P<index>\d+)\.(?P<target>.+)")


@dataclass(frozen=True)
class LoraSettings:
    """What gets adapters and how big they are.

    Attributes:
        towers: ``"vision"``, ``"text"`` or both.
        rank: Rank r of every adapter.
        alpha: LoRA alpha; the update is scaled by ``alpha / rank``.
        dropout: Dropout on the adapter's input.
        targets: Block-relative module names (``"attn.in_proj"``, ``"attn.out_proj"``,
            ``"mlp.c_fc"``, ``"mlp.c_proj"``; ``"attn"`` stands for both attention projections).
        train_logit_scale: Whether CLIP's temperature trains too.
    """

    towers: tuple[str, ...] = TOWERS
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    train_logit_scale: bool = False

    def __post_init__(self):
        towers = (self.towers,) if isinstance(self.towers, str) else tuple(self.towers)
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        targets = tuple(dict.fromkeys(t for x in targets for t in (("attn.in_proj", "attn.out_proj") if x == "attn" else (x,))))
        unknown = [t for t in towers if t not in TOWERS]
        if unknown or not towers:
            raise ValueError(f"towers must be a non-empty subset of {TOWERS}, got {self.towers!r}")
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "towers", towers)
        object.__setattr__(self, "targets", targets)

    def to_dict(self) -> dict:
        """JSON-ready form, for checkpoints."""
        return asdict(self)


def _tower(name: str) -> str:
    # open_clip's CLIP and CustomTextCLIP both keep the vision tower under `visual`.
    return "vision" if name.startswith("visual.") else "text"


def _attention_to_split(model: nn.Module, settings: LoraSettings) -> list[str]:
    # Only the attention modules that get an adapter are rewritten; the others keep CLIP's layout.
    if not any(t.startswith("attn.") for t in settings.targets):
        return []
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.MultiheadAttention)
        and _tower(name) in settings.towers
        and (match := _BLOCK_NAME.fullmatch(name)) is not None
        and match["target"] == "attn"
    ]


def lora_target_names(model: nn.Module, settings: LoraSettings) -> list[str]:
    """Full names of the modules of ``model`` that get adapters; a clear error for a bad target.

    Args:
        model: An open_clip CLIP whose attention is already split (see :func:`split_attention`).
        settings: The LoRA settings.
    """
    names, available = [], set()
    for name, module in model.named_modules():
        match = _BLOCK_NAME.fullmatch(name)
        if match is None or _tower(name) not in settings.towers:
            continue
        available.add(match["target"])
        if match["target"] in settings.targets:
            if type(module) is not nn.Linear:
                raise ValueError(f"LoRA target {match['target']!r} is a {type(module).__name__}, not an nn.Linear ({name})")
            names.append(name)
    missing = [t for t in settings.targets if t not in available]
    if missing:
        raise ValueError(
            f"LoRA targets {missing} match no module of the {'/'.join(settings.towers)} tower(s); block modules are: "
            f"{', '.join(sorted(available))}"
        )
    return names


@register_student("lora")
class LoraCLIP(ClipVideoStudent):
    """CLIP with peft LoRA adapters; frames encoded independently, mean-pooled default head.

    Args:
        clip: open_clip model name or CLIP instance (its attention is rewritten in place).
        pretrained: open_clip tag or local CLIP weights file.
        num_frames: Frame count T of the videos.
        towers, rank, alpha, dropout, targets, train_logit_scale: See :class:`LoraSettings`.
        tokenizer: Tokenizer override.
        **clip_overrides: open_clip config overrides (``embed_dim``, ``vision_cfg``, ...).

    Attributes:
        settings: The :class:`LoraSettings`.
        merged: Whether :meth:`merge` has folded the adapters in.
    """

    def __init__(
        self,
        clip: Union[str, nn.Module] = "ViT-B-16",
        pretrained: Optional[PathLike] = None,
        num_frames: int = 8,
        *,
        towers: Sequence[str] = TOWERS,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.0,
        targets: Sequence[str] = DEFAULT_TARGETS,
        train_logit_scale: bool = False,
        tokenizer=None,
        **clip_overrides,
    ):
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as error:  # an optional extra
            raise ImportError("the lora student needs peft: pip install 'froster-distill[peft]'") from error
        settings = LoraSettings(tuple(towers), rank, alpha, dropout, tuple(targets), train_logit_scale)
        model, default_tokenizer = create_open_clip(clip, pretrained, **clip_overrides)
        clip_keys = tuple(model.state_dict())
        split_attention(model, _attention_to_split(model, settings))
        config = LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            # A regex (peft full-matches it) rather than a list: peft matches list entries as name
            # suffixes, and the text tower's "transformer.resblocks.0..." ends the vision tower's names.
            target_modules="|".join(map(re.escape, lora_target_names(model, settings))),
            bias="none",
        )
        # get_peft_model injects the adapters into `model` in place and freezes everything else;
        # the student then adopts the adapted modules (keys: CLIP's, with peft's in the middle).
        get_peft_model(model, config)
        super().__init__(model, None, num_frames, tokenizer=tokenizer or default_tokenizer)
        self.clip_weights = None if pretrained is None else os.fspath(pretrained)
        self.logit_scale.requires_grad_(settings.train_logit_scale)
        self.settings = settings
        self.merged = False
        self._clip_state_keys = clip_keys  # CLIP's names, for the checkpoint loader's hooks
        self._key_map = self._map_clip_keys()

    def _map_clip_keys(self) -> dict[str, Optional[str]]:
        own = set(self.state_dict())
        return {key: next((c for c in _renamed(key) if c in own), None) for key in self._clip_state_keys}

    def clip_state_dict_key(self, clip_key: str) -> Optional[str]:
        """The student key holding CLIP's ``clip_key``.

        Adapted layers keep their weight under peft's ``base_layer``, and a split attention
        keeps ``in_proj_weight`` as ``in_proj.weight``::

            <block>.attn.in_proj_weight   -> <block>.attn.in_proj.base_layer.weight
            <block>.attn.out_proj.weight  -> <block>.attn.out_proj.base_layer.weight
            <block>.mlp.c_fc.bias         -> <block>.mlp.c_fc.base_layer.bias
        """
        return self._key_map.get(clip_key, clip_key)

    def merge(self) -> "LoraCLIP":
        """Fold every adapter into its base weight, ``W <- W + (alpha / rank) B A``, for inference.

        Uses peft's per-layer ``merge`` and ``get_base_layer``, then packs the attention back
        into ``nn.MultiheadAttention``: afterwards the student has CLIP's keys and forward.
        """
        from peft.tuners.tuners_utils import BaseTunerLayer

        for name, module in list(self.named_modules()):
            if isinstance(module, BaseTunerLayer):
                module.merge()
                self.set_submodule(name, module.get_base_layer())
        unsplit_attention(self)
        self.merged = True
        self._key_map = self._map_clip_keys()
        return self


def _renamed(clip_key: str):
    # Where a CLIP weight can live in the student, most likely first.
    yield clip_key
    module, leaf = clip_key.rsplit(".", 1)
    if leaf in ("in_proj_weight", "in_proj_bias"):
        module, leaf = f"{module}.in_proj", leaf[len("in_proj_"):]
        yield f"{module}.{leaf}"
    yield f"{module}.base_layer.{leaf}"

