"""Training samplers that draw one global sequence per epoch and hand each rank its own block.

The common multi-GPU route (WeightedRandomSampler inside Lightning's DistributedSamplerWrapper)
is only right if every rank happens to draw the same stream. Here every rank derives the epoch's
global sequence from (seed, epoch) alone and keeps positions [rank*L, (rank+1)*L) of it, so the
blocks are disjoint, of equal length L, and together are the whole sequence. Lightning's own
sampler replacement must be off (`trainer.use_distributed_sampler: false`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Sampler

from vidlearn.data.sample_keys import SampleKey, Stream, stream_generator
from vidlearn.data.samplers.alias import AliasTable
from vidlearn.data.samplers.report import expected_frequencies
from vidlearn.data.samplers.sharding import resolve_rank
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

# Draws are made in chunks of this many positions, each from its own (seed, epoch, chunk)
# stream (vidlearn.data.sample_keys.Stream.WEIGHTED): temporaries stay bounded and a rank generates only the chunks its block overlaps.
CHUNK = 1 << 20


class EpochSampler(Sampler[int]):
    """Epoch, seed, rank share and resume position; subclasses define the global sequence.

    `state_dict()` holds the epoch and how many indices this rank has yielded in it, so a run
    resumed mid-epoch continues the same sequence where it stopped.
    """

    def __init__(
        self, num_items: int, num_samples: int, seed: int, rank: int | None, world_size: int | None
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"a training sampler needs num_samples >= 1, got {num_samples}")
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.num_items, self.num_samples = num_items, num_samples
        self.seed = seed
        self.epoch = 0
        self.yielded = 0
        self.share_length = math.ceil(num_samples / self.world_size)

    def global_indices(self, start: int, stop: int) -> np.ndarray:
        """Positions [start, stop) of this epoch's global sequence, int32 or int64 item indices."""
        raise NotImplementedError

    def share(self) -> np.ndarray:
        """This rank's block of the current epoch's global sequence, shape (len(self),)."""
        start = self.rank * self.share_length
        return self.global_indices(start, start + self.share_length)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to draw; a new epoch starts from its first index."""
        if epoch != self.epoch:
            self.yielded = 0
        self.epoch = epoch

    def __len__(self) -> int:
        return self.share_length

    def __iter__(self) -> Iterator[int]:
        return (key.index for key in self.keys())

    def keys(self) -> Iterator[SampleKey]:
        """This rank's remaining indices, each with the key its item draws its randomness from."""
        first = self.rank * self.share_length
        indices = self.share()[self.yielded :].tolist()
        for index in indices:
            position = first + self.yielded
            self.yielded += 1
            yield SampleKey(index, self.seed, self.epoch, position)
        self.yielded = 0  # the epoch is complete; iterating again repeats it from the start

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "yielded": self.yielded,
            "world_size": self.world_size,
            "num_items": self.num_items,
            "num_samples": self.num_samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; with another world size the saved epoch restarts.

        A state saved for another number of training rows or draws per epoch is a ConfigError:
        its position would point into a different sequence.
        """
        for key, what, setting in (
            ("num_items", "training rows", "the manifest, split and filter settings"),
            ("num_samples", "draws per epoch", "sampler.num_samples"),
        ):
            saved, here = state.get(key), getattr(self, key)
            if saved is not None and int(saved) != here:
                raise ConfigError(
                    f"resume: the checkpoint's sampler state was saved for {saved} {what}, this "
                    f"run has {here}; resume with {setting} it was trained with, or start a "
                    "new run (resume=null)."
                )
        self.epoch = int(state["epoch"])
        self.yielded = int(state["yielded"])
        if int(state.get("world_size", self.world_size)) != self.world_size:
            logger.warning(
                "sampler: checkpoint was written with world size %s, now %s; epoch %s "
                "restarts from its first index",
                state["world_size"],
                self.world_size,
                self.epoch,
            )
            self.yielded = 0
        if not 0 <= self.yielded <= self.share_length:
            raise ConfigError(
                f"resume: the checkpoint's sampler state says {self.yielded} draws of epoch "
                f"{self.epoch} were made on this rank, but an epoch here has {self.share_length} "
                "per rank: it was saved for another data set or sampler.num_samples; resume with "
                "the settings it was trained with, or start a new run (resume=null)."
            )


class ShuffleSampler(EpochSampler):
    """No reweighting: a seeded permutation of all items per epoch, split between ranks.

    When the item count is not a multiple of the world size, the permutation wraps around by up
    to world_size - 1 items so every rank gets the same number of steps.
    `targets` sets the number of items and the reported class frequencies; `table` is unused
    (every sampler is called with both).
    """

    def __init__(
        self,
        targets: np.ndarray,
        table: pd.DataFrame | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__(len(targets), len(targets), seed, rank, world_size)
        if self.rank == 0:
            log_frequencies(
                type(self).__name__, expected_frequencies(targets, np.ones(len(targets)))
            )

    def global_indices(self, start: int, stop: int) -> np.ndarray:
        order = np.arange(self.num_items, dtype=np.int32 if self.num_items < 2**31 else np.int64)
        stream_generator(Stream.SHUFFLE, self.seed, self.epoch).shuffle(order)
        return np.resize(order, max(stop, self.num_items))[start:stop]


class WeightedSampler(EpochSampler):
    """`num_samples` draws per epoch with replacement, item i with probability w_i / sum(w).

    Any number of items (an alias table, not torch.multinomial and its 2^24 limit); 8 bytes per
    item for the table plus 4 per drawn index of this rank's share. `groups` (a class or bin per
    item) only labels the frequency table logged at construction.
    """

    def __init__(
        self,
        weights: np.ndarray,
        groups: np.ndarray,
        num_samples: int | None,
        seed: int,
        rank: int | None,
        world_size: int | None,
    ) -> None:
        num_items = len(weights)
        whole = isinstance(num_samples, int | np.integer) and not isinstance(num_samples, bool)
        if num_samples is not None and not (whole and num_samples >= 1):
            raise ConfigError(
                f"sampler.num_samples={num_samples!r}: draws per epoch must be a whole number "
                ">= 1, or null for the training split's length"
            )
        super().__init__(
            num_items, num_items if num_samples is None else num_samples, seed, rank, world_size
        )
        self.table = AliasTable(weights)
        self.total = self.share_length * self.world_size
        self.frequencies = expected_frequencies(groups, weights)
        if self.rank == 0:
            log_frequencies(type(self).__name__, self.frequencies)

    def global_indices(self, start: int, stop: int) -> np.ndarray:
        out = np.empty(stop - start, dtype=np.int32)
        for chunk in range(start // CHUNK, math.ceil(stop / CHUNK)):
            first = chunk * CHUNK
            drawn = self.table.draw(
                stream_generator(Stream.WEIGHTED, self.seed, self.epoch, chunk),
                min(CHUNK, self.total - first),
            )
            low, high = max(start, first), min(stop, first + len(drawn))
            out[low - start : high - start] = drawn[low - first : high - first]
        return out


class KeyedSampler(Sampler[SampleKey]):
    """An EpochSampler that yields `SampleKey`s (for the dataset) instead of bare indices.

    Epoch, position and state stay on the wrapped sampler, which the DataModule checkpoints.
    """

    def __init__(self, sampler: EpochSampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[SampleKey]:
        return self.sampler.keys()

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this on the loader's sampler each epoch; the wrapped sampler keeps it."""
        self.sampler.set_epoch(epoch)


def log_frequencies(name: str, table: pd.DataFrame) -> None:
    """Log the natural vs expected sampled frequencies once, at the start of training."""
    logger.info(
        "%s: natural vs expected sampled frequency per class or bin\n%s",
        name,
        table.to_string(float_format=lambda value: f"{value:.4f}"),
    )
