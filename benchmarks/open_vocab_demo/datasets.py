"""The video sets of one seed: base training shots, base test videos, novel test videos per novel set."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from open_vocab_demo import world as W


@dataclass
class VideoSet:
    """Videos (N, 3, T, H, W), labels (N,) and the K class prompts the labels index."""

    videos: torch.Tensor
    labels: torch.Tensor
    prompts: list[str]


@dataclass
class Data:
    """Base training shots, base test videos and the test videos of each novel set."""

    train: VideoSet
    base_test: VideoSet
    novel_tests: dict[str, VideoSet]

    def test_sets(self) -> dict[str, VideoSet]:
        """``{"base": ..., "<novel set>": ...}``."""
        return {"base": self.base_test, **self.novel_tests}


def make_data(world: W.World, shots: int, test_per_class: int, frames: int, seed: int, look: W.Look = W.Look()) -> Data:
    """Draw the videos of one seed: ``shots`` per base class to train on, ``test_per_class`` to test.

    Base and novel accuracies are each measured among their own classes only (the base-to-novel
    protocol of the paper): a base video is scored against the base prompts, a novel video
    against the novel prompts.
    """
    generator = torch.Generator().manual_seed(seed)

    def video_set(actions: tuple[W.Action, ...], per_class: int) -> VideoSet:
        return VideoSet(*W.videos(actions, per_class, frames, generator, look), [a.prompt for a in actions])

    train = video_set(world.base, shots)
    base_test = video_set(world.base, test_per_class)
    return Data(train, base_test, {name: video_set(actions, test_per_class) for name, actions in world.novel_sets().items()})
