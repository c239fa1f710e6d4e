"""Every use of randomness has its own stream: an item's key in training, a bare index in
evaluation, a shuffle's epoch and a weighted sampler's chunk never share one (issue 20).

Streams are observed from outside: every PCG64 built while a use draws is recorded with its
initial state, so the tests hold whatever the seeding code looks like inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidlearn.data.sample_keys import SampleKey, sample_generator
from vidlearn.data.samplers import ShuffleSampler, WeightedSampler
from vidlearn.data.samplers import epoch_sampler as epoch_sampler_module

SMALL_CHUNK = 2  # positions per weighted-sampler chunk here, so chunk k is cheap to reach
# Zeros, small numbers and numbers past 32 bits (two SeedSequence words each).
NUMBERS = st.sampled_from([0, 1, 2, 7, 2**32, 2**32 + 1, 2**40 + 3])

Use = tuple[str, ...] | tuple[str, int] | tuple[str, int, int] | tuple[str, int, int, int]


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> Callable[[Use], tuple[int, int]]:
    """The PCG64 state (state, increment) of the one stream a use builds."""
    monkeypatch.setattr(epoch_sampler_module, "CHUNK", SMALL_CHUNK)
    built: list[tuple[int, int]] = []

    class RecordingPCG64(np.random.PCG64):
        def __init__(self, seed: np.random.SeedSequence) -> None:
            super().__init__(seed)
            state = self.state["state"]
            built.append((state["state"], state["inc"]))

    @contextmanager
    def recording() -> Iterator[list[tuple[int, int]]]:
        built.clear()
        with monkeypatch.context() as patch:
            patch.setattr(np.random, "PCG64", RecordingPCG64)
            yield built

    def stream_of(use: Use) -> tuple[int, int]:
        kind, *fields = use
        if kind == "shuffle":
            sampler = ShuffleSampler(np.zeros(3), seed=fields[0], rank=0, world_size=1)
            sampler.set_epoch(fields[1])
            draw = lambda: sampler.global_indices(0, 3)  # noqa: E731
        elif kind == "weighted":
            seed, epoch, chunk = fields
            sampler = WeightedSampler(
                np.ones(3), np.zeros(3, np.int64), (chunk + 1) * SMALL_CHUNK, seed, 0, 1
            )
            sampler.set_epoch(epoch)
            draw = lambda: sampler.global_indices(chunk * SMALL_CHUNK, chunk * SMALL_CHUNK + 1)  # noqa: E731
        elif kind == "train":
            draw = lambda: sample_generator(SampleKey(0, *fields))  # noqa: E731
        else:
            draw = lambda: sample_generator(fields[0])  # noqa: E731
        with recording() as seen:
            draw()
        assert len(seen) == 1, f"{use} built {len(seen)} generators"
        return seen[0]

    return stream_of


def test_evaluation_index_and_training_key_draw_apart(streams: Callable) -> None:
    """Caught: evaluation index i drew the stream of training key (seed=i, epoch 0, position 0)
    (SeedSequence pads short entropy with zeros)."""
    assert streams(("eval", 5)) != streams(("train", 5, 0, 0))


def test_shuffle_and_weighted_chunk_zero_draw_apart(streams: Callable) -> None:
    """Caught: ShuffleSampler's (seed, epoch) stream was WeightedSampler's chunk 0 of the same
    seed and epoch (SeedSequence pads short entropy with zeros)."""
    assert streams(("shuffle", 3, 1)) != streams(("weighted", 3, 1, 0))


@given(NUMBERS, NUMBERS, NUMBERS, st.integers(0, 2))
def test_distinct_uses_draw_distinct_streams(
    streams: Callable, first: int, second: int, third: int, chunk: int
) -> None:
    """Every kind of use, from the same numbers and from the first number padded with zeros:
    distinct uses, distinct streams.

    Caught: both named collisions above; planted, numbers handed to SeedSequence whole (one
    past 32 bits becomes two words: keys (1, 1, 2^32 + 1) and (1, 2^32 + 1, 1) collided), and
    seeds without the use's tag.
    """
    uses = {
        ("eval", first),
        ("train", first, second, third),
        ("train", first, 0, 0),
        ("train", second, third, first),
        ("shuffle", first, second),
        ("shuffle", first, 0),
        ("weighted", first, second, chunk),
        ("weighted", first, 0, 0),
    }
    states = {use: streams(use) for use in uses}
    assert len(set(states.values())) == len(uses), states
