"""The frozen CLIP teacher built from open_clip_torch."""
from __future__ import annotations

import os
from typing import Optional, Union

import torch

from froster.clip_loading import create_open_clip
from froster.teachers.module_teacher import ModuleTeacher

_PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class OpenCLIPTeacher(ModuleTeacher):
    """A frozen open_clip model (ViT-B/32, B/16, L/14, ...) as the distillation teacher."""

    @classmethod
    def from_pretrained(
        cls,
        model_name: str,
        pretrained: Optional[Union[str, os.PathLike]] = None,
        *,
        precision: str = "fp32",
        device: Union[str, torch.device] = "cpu",
        trust_code: bool = False,
        **model_overrides,
    ) -> "OpenCLIPTeacher":
        """Build the teacher from an open_clip name and weights.

        Args:
            model_name: open_clip model name, e.g. ``"ViT-B-16"``.
            pretrained: An open_clip tag (``"openai"``; downloaded where a network exists), a
                local file (OpenAI TorchScript ``.pt``, state dict, ``.safetensors``), or ``None``
                for random weights (tests).
            precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``; half precision is the cheap choice
                on GPUs since the teacher only runs forward.
            device: Where to put the teacher.
            trust_code: Let a TorchScript ``pretrained`` file run the code it carries
                (``torch.jit.load``); only for files you trust (the trust model in ``docs/api.md``).
                By default its weights are read without running anything.
            **model_overrides: open_clip config overrides (``embed_dim``, ``vision_cfg``, ...).
        """
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, got {precision!r}")
        model, tokenizer = create_open_clip(model_name, pretrained, device=device, trust_code=trust_code, **model_overrides)
        return cls(model, tokenizer=tokenizer, dtype=_PRECISIONS[precision])
