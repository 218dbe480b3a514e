"""Read and write the key layout of X-CLIP's released checkpoints for the ``xclip`` student.

The released checkpoints are ``torch.save({"model": state_dict, "optimizer": ..., ...})`` of
X-CLIP's model, which subclasses OpenAI's CLIP: CLIP's text keys sit at the top level
(``token_embedding``, ``positional_embedding``, ``transformer.*``, ``ln_final``,
``text_projection``, ``logit_scale``), the vision tower under ``visual.*`` with three message
modules per block, and the added heads beside them. A flat dict whose keys all start with
``model.`` (or ``module.``) is read too. The mapping, X-CLIP -> student (other keys are equal)::

    mit.positional_embedding                           -> mit.position_embedding
    mit.resblocks.{i}.*                                -> mit.blocks.{i}.*
    prompts_generator.norm.*                           -> prompt_generator.visual_ln.*
    prompts_generator.alpha                            -> prompt_generator.alpha
    prompts_generator.decoder.{i}.cross_attn.{q,k,v}_proj.weight
                                                       -> prompt_generator.layers.{i}.{q,k,v}_proj.weight
    prompts_generator.decoder.{i}.cross_attn.proj.*    -> prompt_generator.layers.{i}.out_proj.*
    prompts_generator.decoder.{i}.norm1.*              -> prompt_generator.layers.{i}.ln_1.*
    prompts_generator.decoder.{i}.norm3.*              -> prompt_generator.layers.{i}.ln_2.*
    prompts_generator.decoder.{i}.mlp.0.*              -> prompt_generator.layers.{i}.mlp.c_fc.*
    prompts_generator.decoder.{i}.mlp.3.*              -> prompt_generator.layers.{i}.mlp.c_proj.*
    prompts_visual_ln.*                                -> prompt_visual_ln.*
    prompts_visual_proj                                -> prompt_visual_proj
    visual.transformer.resblocks.{i}.message_{fc,ln,attn}.*  (unchanged)

Layout details that must agree with the checkpoint: the integration transformer's position
embedding has ``num_frames`` rows (8 for the released 8-frame models), and the student's
open_clip model must be the CLIP X-CLIP started from (e.g. ``ViT-B-16`` with QuickGELU, i.e.
open_clip's ``ViT-B-16-quickgelu`` or the ``openai`` tag).
"""
from __future__ import annotations

import os
import re
from typing import Mapping, Union

import torch
import torch.nn as nn

__all__ = ["XCLIP_KEY_MAP", "from_xclip_keys", "to_xclip_keys", "load_xclip_checkpoint", "save_xclip_checkpoint"]

# (X-CLIP name, student name); {i} is a layer index, {rest} the remainder of the key.
XCLIP_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("mit.positional_embedding", "mit.position_embedding"),
    ("mit.resblocks.{i}.{rest}", "mit.blocks.{i}.{rest}"),
    ("prompts_generator.norm.{rest}", "prompt_generator.visual_ln.{rest}"),
    ("prompts_generator.alpha", "prompt_generator.alpha"),
    ("prompts_generator.decoder.{i}.cross_attn.q_proj.{rest}", "prompt_generator.layers.{i}.q_proj.{rest}"),
    ("prompts_generator.decoder.{i}.cross_attn.k_proj.{rest}", "prompt_generator.layers.{i}.k_proj.{rest}"),
    ("prompts_generator.decoder.{i}.cross_attn.v_proj.{rest}", "prompt_generator.layers.{i}.v_proj.{rest}"),
    ("prompts_generator.decoder.{i}.cross_attn.proj.{rest}", "prompt_generator.layers.{i}.out_proj.{rest}"),
    ("prompts_generator.decoder.{i}.norm1.{rest}", "prompt_generator.layers.{i}.ln_1.{rest}"),
    ("prompts_generator.decoder.{i}.norm3.{rest}", "prompt_generator.layers.{i}.ln_2.{rest}"),
    ("prompts_generator.decoder.{i}.mlp.0.{rest}", "prompt_generator.layers.{i}.mlp.c_fc.{rest}"),
    ("prompts_generator.decoder.{i}.mlp.3.{rest}", "prompt_generator.layers.{i}.mlp.c_proj.{rest}"),
    ("prompts_visual_ln.{rest}", "prompt_visual_ln.{rest}"),
    ("prompts_visual_proj", "prompt_visual_proj"),
)


def _pattern(template: str) -> re.Pattern:
    escaped = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{rest\}", r"(?P<rest>.+)")
    return re.compile(escaped)


_FORWARD = tuple((_pattern(src), dst) for src, dst in XCLIP_KEY_MAP)
_BACKWARD = tuple((_pattern(dst), src) for src, dst in XCLIP_KEY_MAP)


def _rename(key: str, rules) -> str:
    for pattern, template in rules:
        match = pattern.fullmatch(key)
        if match:
            return template.format(**match.groupdict())
    return key


def from_xclip_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An X-CLIP state dict (``model.`` prefix optional) under the student's names."""
    if state and all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    return {_rename(k, _FORWARD): v for k, v in state.items()}


def to_xclip_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The student's state dict under X-CLIP's names (no ``model.`` prefix)."""
    return {_rename(k, _BACKWARD): v for k, v in state.items()}


def load_xclip_checkpoint(
    student: nn.Module,
    path: Union[str, os.PathLike],
    strict: bool = True,
    weights_only: bool = True,
    *,
    allow_activation_mismatch: bool = False,
    trust_code: bool = False,
):
    """Load a checkpoint in X-CLIP's layout into an ``xclip`` student.

    :func:`froster.adapters.checkpoints.load_student_checkpoint` with ``layout="xclip"``.

    Args:
        student: The :class:`~froster.adapters.xclip.XCLIP` student (same CLIP, layers, frames),
            built with QuickGELU like X-CLIP's CLIP (``activation="quick_gelu"``).
        path: ``{"model": state_dict, ...}`` as X-CLIP saves it, or a flat state dict whose keys
            may carry a ``model.`` or ``module.`` prefix.
        strict: Refuse missing or unexpected keys; shape mismatches are always refused.
        weights_only: Passed to ``torch.load``. With ``True`` the yacs config X-CLIP pickles
            beside the weights is read as inert data; ``False`` unpickles it with yacs itself
            (installed, and only for files you trust).
        allow_activation_mismatch: Load into a student built with exact GELU anyway.
        trust_code: Let a TorchScript ``path`` run the code it carries; only for files you trust
            (see :func:`froster.clip_loading.read_state_dict`).

    Returns:
        The ``(missing, unexpected)`` key lists, in the student's names (empty when ``strict``).

    Raises:
        ValueError: naming the differing keys and shapes, before anything is loaded.
    """
    from froster.adapters.checkpoints import load_student_checkpoint

    report = load_student_checkpoint(
        student, path, layout="xclip", strict=strict, weights_only=weights_only, allow_activation_mismatch=allow_activation_mismatch,
        trust_code=trust_code,
    )
    return report.missing, report.unexpected


def save_xclip_checkpoint(student: nn.Module, path: Union[str, os.PathLike]) -> None:
    """Save ``student`` as X-CLIP does: ``torch.save({"model": <X-CLIP-named state dict>}, path)``."""
    state = {k: v.detach().cpu() for k, v in to_xclip_keys(student.state_dict()).items()}
    torch.save({"model": state}, os.fspath(path))
