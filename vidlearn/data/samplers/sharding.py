"""Which rank this process is, and the plain evaluation split that needs no balancing."""

from __future__ import annotations

from collections.abc import Iterator

import torch.distributed as dist
from torch.utils.data import Sampler


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size) from the arguments, else torch.distributed when initialised, else (0, 1)."""
    distributed = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if distributed else 1
    if rank is None:
        rank = dist.get_rank() if distributed else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1} (world size {world_size})")
    return rank, world_size


class EvalShardSampler(Sampler[int]):
    """Rank r of W reads the contiguous block [length*r//W, length*(r+1)//W), in order.

    Nothing is padded or repeated, so every item is evaluated exactly once across ranks and the
    metrics equal a single-process evaluation; block lengths differ by at most one.
    """

    def __init__(self, length: int, rank: int | None = None, world_size: int | None = None) -> None:
        if length < 0:
            raise ValueError(f"EvalShardSampler length must be >= 0, got {length}")
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.start = length * self.rank // self.world_size
        self.stop = length * (self.rank + 1) // self.world_size

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))
