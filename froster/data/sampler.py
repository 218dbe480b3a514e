"""A distributed sampler for evaluation that visits every video exactly once across all ranks.

torch's ``DistributedSampler`` pads the index list so every rank gets the same number of items,
which evaluates a few videos twice and biases the accuracy (one cause of results that change with
the number of GPUs). Here rank ``r`` of ``W`` takes indices ``r, r + W, r + 2W, ...``: the ranks
partition ``range(N)`` with no padding, so their lengths may differ by one. Gather predictions
keyed by ``batch["index"]`` (or per-rank sums of correct counts) rather than assuming equal
lengths, and never call a collective once per batch, since ranks may run different numbers of
batches.
"""
from __future__ import annotations

from typing import Iterator, Optional, Sized

import torch.distributed as dist
from torch.utils.data import Sampler


class EvalDistributedSampler(Sampler[int]):
    """Indices ``rank::num_replicas`` of the dataset, in order, without padding or shuffling.

    Args:
        dataset: Anything with a length.
        num_replicas: World size; taken from ``torch.distributed`` when None (1 if it is not
            initialised).
        rank: This process's rank; taken from ``torch.distributed`` when None (0 if it is not
            initialised).
    """

    def __init__(self, dataset: Sized, num_replicas: Optional[int] = None, rank: Optional[int] = None):
        initialised = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if initialised else 1
        if rank is None:
            rank = dist.get_rank() if initialised else 0
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be positive, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))

    def set_epoch(self, epoch: int) -> None:
        """Accepted for drop-in use with training loops; the order never changes."""
