"""Properties of the alias table and of every training sampler, over generated weights, class
counts and world sizes (vidlearn issue 20, item A)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data.samplers import (
    AliasTable,
    BalancedSampler,
    EpochSampler,
    OversampleSampler,
    ShuffleSampler,
    UniformRegressionSampler,
    WeightedSampler,
    WeightsColumnSampler,
)
from vidlearn.data.samplers.balancing import label_bins

# Keep probabilities are float32: each slot's is off by at most 2^-25 (2^-24 of itself when
# small), and an item is the alias of at most n slots, so with n <= 64 mixed weights (or equal
# weights, whose slots round to exactly 1) no probability is off by more than 64 * 2^-25 of
# itself. The bound grows with n: see issue 20's report (a float64 keep would remove it).
RTOL = 64 * 2**-25
SIGMAS = 5.0  # sampled counts may stray this many standard deviations from their expectation

positive_weight = st.floats(min_value=1e-12, max_value=1e12)
weight = st.one_of(st.just(0.0), positive_weight)
weight_lists = st.one_of(
    # any mix, at least one positive
    st.lists(weight, min_size=1, max_size=64).filter(lambda weights: sum(weights) > 0),
    # equal weights: every scaled weight is 1 up to rounding (the balanced data set's case)
    st.tuples(positive_weight, st.integers(1, 300)).map(lambda pair: [pair[0]] * pair[1]),
)
class_counts = st.one_of(
    st.lists(st.integers(1, 40), min_size=1, max_size=12),  # any counts, one class included
    st.tuples(st.integers(1, 12), st.integers(1, 120)).map(lambda pair: [pair[1]] * pair[0]),
)
world_sizes = st.integers(1, 8)


def assert_counts_match(drawn: np.ndarray, probabilities: np.ndarray) -> None:
    """Each item's count within SIGMAS binomial standard deviations (plus one) of its expectation."""
    counts = np.bincount(drawn, minlength=len(probabilities))
    expected = len(drawn) * probabilities
    spread = SIGMAS * np.sqrt(expected * (1.0 - probabilities)) + 1.0
    assert np.all(np.abs(counts - expected) <= spread), (counts, expected)


def assert_table_is_valid(table: AliasTable) -> None:
    keep, alias = table._halves(table.words)
    assert np.all((keep >= 0.0) & (keep <= 1.0))
    assert np.all((alias >= 0) & (alias < table.num_items))


# -- the alias table ----------------------------------------------------------------------------
@given(weight_lists)
def test_alias_table_encodes_any_valid_weights(weights: list[float]) -> None:
    """Any finite, non-negative weights with a positive sum give a valid table whose exact
    distribution is the normalised weights.

    Caught: the IndexError on equal weights (2 classes x 10 items: every scaled weight rounds to
    just under 1, no item is "large"); planted, a lender that keeps its whole slot
    (`keep[lender] = 1.0`) breaks the distribution.
    """
    weights = np.asarray(weights)
    table = AliasTable(weights)
    assert_table_is_valid(table)
    np.testing.assert_allclose(
        table.probabilities(), weights / weights.sum(), rtol=RTOL, atol=1e-12
    )


@settings(max_examples=15)
@given(weight_lists)
def test_alias_table_draws_match_the_weights(weights: list[float]) -> None:
    """Sampled frequencies are within 5 standard deviations of the normalised weights.

    Caught (planted): dropping the alias (`np.where(coins < keep, slots, slots)`) draws
    uniformly; slots drawn from `integers(0, n - 1)` never draw the last slot.
    """
    weights = np.asarray(weights)
    drawn = AliasTable(weights).draw(np.random.default_rng(0), 20_000)
    assert_counts_match(drawn, weights / weights.sum())


@pytest.mark.parametrize(
    "weights",
    [[-1.0, 2.0], [np.nan, 1.0], [np.inf, 1.0], [0.0, 0.0], []],
    ids=["negative", "nan", "inf", "all-zero", "empty"],
)
def test_alias_table_refuses_invalid_weights(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        AliasTable(np.asarray(weights, dtype=np.float64))


# -- the samplers ---------------------------------------------------------------------------------
def shares(build: Callable[..., EpochSampler], world_size: int) -> list[np.ndarray]:
    """Every rank's share of epoch 1 from samplers built alike but for their own rank."""
    samplers = [build(rank=rank, world_size=world_size) for rank in range(world_size)]
    for sampler in samplers:
        sampler.set_epoch(1)
    return [np.asarray(list(sampler)) for sampler in samplers]


def assert_ranks_split_the_global_sequence(
    build: Callable[..., EpochSampler], world_size: int, num_items: int
) -> np.ndarray:
    """Equal-length shares of valid indices that, in rank order, are rank 0's global sequence."""
    parts = shares(build, world_size)
    reference: EpochSampler = build(rank=0, world_size=world_size)
    reference.set_epoch(1)
    length = len(reference)
    assert all(len(part) == length for part in parts)
    whole = np.concatenate(parts)
    assert np.all((whole >= 0) & (whole < num_items))
    np.testing.assert_array_equal(whole, reference.global_indices(0, length * world_size))
    return whole


def group_probabilities(sampler: WeightedSampler, groups: np.ndarray) -> np.ndarray:
    """The exact probability that a draw lands in each group, from the sampler's alias table."""
    return np.bincount(groups, weights=sampler.table.probabilities())


@given(class_counts, st.sampled_from([0.0, 0.5, 1.0]), world_sizes)
def test_balanced_sampler_weights_classes_by_count_to_the_minus_alpha(
    counts: list[int], alpha: float, world_size: int
) -> None:
    """Class c is drawn with probability count_c^(1-alpha) / sum; ranks split the epoch.

    Caught: the IndexError on equal class counts; planted, shares starting at
    `rank * (share_length - 1)` (overlapping ranks), and `counts**(alpha / 2)`.
    """
    targets = np.repeat(np.arange(len(counts)), counts)

    def build(**ranks: int) -> BalancedSampler:
        return BalancedSampler(targets, alpha=alpha, seed=3, **ranks)

    assert_ranks_split_the_global_sequence(build, world_size, len(targets))
    mass = np.asarray(counts, dtype=np.float64) ** (1.0 - alpha)
    np.testing.assert_allclose(
        group_probabilities(build(rank=0, world_size=1), targets), mass / mass.sum(), rtol=RTOL
    )


@given(st.integers(1, 60), st.integers(1, 60), st.floats(0.01, 0.99), world_sizes)
def test_oversample_sampler_draws_positives_at_the_asked_fraction(
    negatives: int, positives: int, fraction: float, world_size: int
) -> None:
    """Positives make up `positive_fraction` of the expected draws, any class sizes.

    Caught (planted): swapping the two class weights draws positives at 1 - fraction.
    """
    targets = np.repeat([0.0, 1.0], [negatives, positives]).astype(np.float32)

    def build(**ranks: int) -> OversampleSampler:
        return OversampleSampler(targets, positive_fraction=fraction, **ranks)

    assert_ranks_split_the_global_sequence(build, world_size, len(targets))
    expected = [1.0 - fraction, fraction]
    probabilities = group_probabilities(build(rank=0, world_size=1), targets.astype(np.int64))
    np.testing.assert_allclose(probabilities, expected, rtol=RTOL)


@given(
    st.lists(
        st.one_of(
            st.integers(-5, 5).map(float),  # ties
            st.sampled_from([1.0000001, 1.0000002]),  # alike in 6 digits
            st.floats(-1e6, 1e6),
        ),
        min_size=1,
        max_size=80,
    ),
    st.one_of(st.just("unique"), st.integers(1, 6)),
    st.sampled_from(["uniform", "quantile"]),
    world_sizes,
)
def test_uniform_regression_sampler_makes_every_occupied_bin_equally_likely(
    values: list[float], bins: int | str, edges: str, world_size: int
) -> None:
    """Every bin holding a value is drawn with the same probability; ranks split the epoch.

    Caught: duplicate bin names crashed (a constant target with bins=2, or 1 and 1.0000001 with
    bins=unique: "Categorical categories must be unique"); planted, weighting by the bin count
    instead of its inverse.
    """

    def build(**ranks: int) -> UniformRegressionSampler:
        return UniformRegressionSampler(np.asarray(values), bins=bins, edges=edges, **ranks)

    assert_ranks_split_the_global_sequence(build, world_size, len(values))
    codes = label_bins(np.asarray(values), bins, edges).codes
    probabilities = group_probabilities(build(rank=0, world_size=1), codes)
    occupied = probabilities[np.bincount(codes) > 0]
    np.testing.assert_allclose(occupied, 1.0 / len(occupied), rtol=RTOL)


@given(weight_lists, world_sizes)
def test_weights_column_sampler_draws_rows_in_proportion_to_the_column(
    weights: list[float], world_size: int
) -> None:
    """Row i is drawn with probability w_i / sum(w); ranks split the epoch; draws agree.

    Caught: the IndexError on equal column weights; planted, `np.sqrt(weights)`.
    """
    table = pd.DataFrame({"weight": weights})
    targets = np.zeros(len(weights), dtype=np.int64)

    def build(**ranks: int) -> WeightsColumnSampler:
        return WeightsColumnSampler(targets, table, column="weight", num_samples=3000, **ranks)

    whole = assert_ranks_split_the_global_sequence(build, world_size, len(weights))
    expected = np.asarray(weights) / np.sum(weights)
    np.testing.assert_allclose(
        build(rank=0, world_size=1).table.probabilities(), expected, rtol=RTOL, atol=1e-12
    )
    assert_counts_match(whole[:3000], expected)


@given(st.integers(1, 200), world_sizes)
def test_shuffle_sampler_shares_cover_every_item_once_plus_the_wrap(
    num_items: int, world_size: int
) -> None:
    """The epoch's first n positions are a permutation of the items, and the W*L - n positions
    that give every rank the same length repeat that permutation cyclically.

    Caught (planted): each rank shuffling with its own seed (`seed + rank`), so the ranks'
    shares are blocks of different permutations.
    """
    targets = np.zeros(num_items, dtype=np.int64)

    def build(**ranks: int) -> ShuffleSampler:
        return ShuffleSampler(targets, seed=7, **ranks)

    whole = assert_ranks_split_the_global_sequence(build, world_size, num_items)
    assert sorted(whole[:num_items]) == list(range(num_items))
    np.testing.assert_array_equal(whole[num_items:], whole[: len(whole) - num_items])
