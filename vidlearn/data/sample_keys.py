"""Per-sample random streams: every random draw of an item comes from its key, never a worker.

The training sampler hands the dataset a `SampleKey` instead of a bare index: the row plus the
(seed, epoch, position) of that draw in the epoch's global sequence. The dataset builds one
generator from the key and takes the clip position and the augmentation from it, so a batch is
the same whatever `data.num_workers` is and a resumed run (mid-epoch included) draws exactly
what the uninterrupted run drew. A weighted sampler may draw a row twice in an epoch: each draw
has its own position, hence its own augmentation. Evaluation passes bare indices.

Every stream of the data path, the samplers' own included, is seeded with a `Stream` tag for
its use followed by its numbers, so evaluation index i, training key (seed=i, epoch 0,
position 0) and a sampler's (seed, epoch) never draw the same numbers.
"""

from __future__ import annotations

from enum import IntEnum, unique
from typing import NamedTuple

import numpy as np


@unique
class Stream(IntEnum):
    """One fixed 32-bit tag per use of randomness, the first word of its seed, so that no two
    uses can share a stream whatever their numbers (four ASCII letters, for a reader of dumps)."""

    TRAIN_ITEM = 0x6B657969  # "keyi": an item drawn in training, from its SampleKey
    EVAL_ITEM = 0x6576616C  # "eval": an item read in evaluation, from its bare index
    SHUFFLE = 0x73687566  # "shuf": ShuffleSampler's permutation of an epoch
    WEIGHTED = 0x77676874  # "wght": one chunk of WeightedSampler's draws of an epoch


class SampleKey(NamedTuple):
    """Which row to read and where its random draws come from."""

    index: int  # row of the split
    seed: int
    epoch: int
    position: int  # place of this draw in the epoch's global sequence (all ranks)


def stream_generator(use: Stream, *numbers: int) -> np.random.Generator:
    """PCG64 seeded from the use's tag and its numbers, the same on every machine.

    Each number takes exactly two 32-bit words, so a use's seed has a fixed length and a
    number past 32 bits cannot pass for two small ones; SeedSequence pads short seeds with
    zeros, which without the tag made (seed, epoch) the stream of (seed, epoch, 0).
    """
    words = [int(use)]
    for number in numbers:
        if not 0 <= number < 2**64:
            raise ValueError(f"{use.name} stream: {number} is not in 0..2^64 - 1")
        words += [number & 0xFFFFFFFF, number >> 32]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def sample_generator(key: SampleKey | int) -> np.random.Generator:
    """The generator of one item: from its key, or from the bare index in evaluation."""
    if isinstance(key, SampleKey):
        return stream_generator(Stream.TRAIN_ITEM, key.seed, key.epoch, key.position)
    return stream_generator(Stream.EVAL_ITEM, int(key))


def key_index(key: SampleKey | int) -> int:
    """The row a key (or bare index) points to."""
    return key.index if isinstance(key, SampleKey) else int(key)
