"""Cache of the frozen teacher's text features, keyed by the prompt set.

The teacher is frozen, so its text features for a given prompt set never change; the released
code re-ran its text encoder on every step for all classes.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, Hashable, Sequence, Union

import torch


def prompt_key(prompts: Union[torch.Tensor, Sequence[str]]) -> Hashable:
    """A hashable key that identifies a prompt set exactly (strings or token tensor)."""
    if isinstance(prompts, torch.Tensor):
        digest = hashlib.sha1(prompts.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
        return ("tokens", tuple(prompts.shape), str(prompts.dtype), digest)
    return ("strings", tuple(prompts))


class TextFeatureCache:
    """A small LRU of ``prompt set -> tensor`` (teacher features, or tokens).

    Args:
        max_entries: Prompt sets kept; training with one random template per step over 29
            templates wants at least 29.
    """

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        value = compute().detach()
        self._entries[key] = value
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
