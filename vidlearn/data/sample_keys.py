"""Per-sample random streams: every random draw of an item comes from its key, never a worker.

The training sampler hands the dataset a `SampleKey` instead of a bare index: the row plus the
(seed, epoch, position) of that draw in the epoch's global sequence. The dataset builds one
generator from the key and takes the clip position and the augmentation from it, so a batch is
the same whatever `data.num_workers` is and a resumed run (mid-epoch included) draws exactly
what the uninterrupted run drew. A weighted sampler may draw a row twice in an epoch: each draw
has its own position, hence its own augmentation. Evaluation passes bare indices (no draws).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Tags the item streams apart from the samplers' own (seed, epoch, chunk) streams.
_ITEM_STREAM = 0x5A4D


class SampleKey(NamedTuple):
    """Which row to read and where its random draws come from."""

    index: int  # row of the split
    seed: int
    epoch: int
    position: int  # place of this draw in the epoch's global sequence (all ranks)


def sample_generator(key: SampleKey | int) -> np.random.Generator:
    """The generator of one item: from its key, or from the bare index in evaluation."""
    entropy = [key.seed, key.epoch, key.position] if isinstance(key, SampleKey) else [int(key)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([_ITEM_STREAM, *entropy])))


def key_index(key: SampleKey | int) -> int:
    """The row a key (or bare index) points to."""
    return key.index if isinstance(key, SampleKey) else int(key)
