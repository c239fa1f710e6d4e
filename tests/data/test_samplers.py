"""Specifications of the weighted sampler family (vidlearn issue 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.stats import chisquare

from vidlearn.data.samplers import (
    AliasTable,
    BalancedSampler,
    EvalShardSampler,
    KeyedSampler,
    OversampleSampler,
    ShuffleSampler,
    UniformRegressionSampler,
    WeightedSampler,
    WeightsColumnSampler,
    balanced_class_weights,
    expected_frequencies,
    positive_weight,
)
from vidlearn.data.samplers.epoch_sampler import CHUNK
from vidlearn.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "sampler"
IMBALANCED = np.repeat([0, 1, 2], [800, 150, 50])  # 80 / 15 / 5 % classes
DRAWS = 30_000
P_MIN = 1e-3  # chi-square p-value below which sampled frequencies disagree with expectation


def sampled_counts(sampler: WeightedSampler, groups: np.ndarray, epochs: int = 1) -> np.ndarray:
    """How often each group was drawn over `epochs` epochs."""
    drawn = np.concatenate([epoch_share(sampler, epoch) for epoch in range(epochs)])
    return np.bincount(groups[drawn], minlength=groups.max() + 1)


def epoch_share(sampler: WeightedSampler | ShuffleSampler, epoch: int) -> np.ndarray:
    sampler.set_epoch(epoch)
    return np.asarray(list(sampler))


# -- the alias table --------------------------------------------------------------------------
def test_alias_table_encodes_the_normalised_weights_exactly() -> None:
    weights = np.random.default_rng(0).random(1000) ** 4
    weights[::7] = 0.0
    table = AliasTable(weights)
    np.testing.assert_allclose(
        table.probabilities(), weights / weights.sum(), rtol=1e-6, atol=1e-12
    )


def test_alias_table_never_draws_a_zero_weight_item() -> None:
    weights = np.array([0.0, 5.0, 0.0, 1e-3, 0.0])
    drawn = AliasTable(weights).draw(np.random.default_rng(0), 100_000)
    assert set(np.unique(drawn)) == {1, 3}


def test_alias_table_rejects_all_zero_weights() -> None:
    with pytest.raises(ValueError, match="not all zero"):
        AliasTable(np.zeros(4))


@pytest.mark.parametrize(
    "weights",
    [[-1.0, 2.0], [np.nan, 1.0], [np.inf, 1.0], []],
    ids=["negative", "nan", "inf", "empty"],
)
def test_alias_table_rejects_invalid_weights_saying_what_is_wrong(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        AliasTable(np.asarray(weights, dtype=np.float64))


@pytest.mark.parametrize("num_classes", [2, 3])
def test_balanced_sampler_builds_on_a_perfectly_balanced_data_set(num_classes: int) -> None:
    # 10 items per class: every scaled weight rounds to just under 1, so none was "large".
    targets = np.repeat(np.arange(num_classes), 10)
    sampler = BalancedSampler(targets, world_size=1, rank=0)
    np.testing.assert_allclose(sampler.table.probabilities(), 1.0 / len(targets), rtol=1e-6)


def test_sampler_draws_items_beyond_the_2_to_24_multinomial_limit() -> None:
    num_items = 2**24 + 2
    weights = np.ones(num_items, dtype=np.float32)
    weights[-2:] = 2**26  # the last two items, past torch.multinomial's limit: 8/9 of the mass
    sampler = WeightedSampler(
        weights, np.zeros(num_items, dtype=np.int64), num_samples=9000, seed=0, rank=0, world_size=1
    )
    drawn = epoch_share(sampler, 0)
    last_two = np.isin(drawn, [num_items - 2, num_items - 1]).sum()
    assert chisquare([last_two, 9000 - last_two], [8000, 1000]).pvalue > P_MIN


@pytest.mark.slow
def test_sampler_draws_an_epoch_of_50_million_items_with_balanced_classes() -> None:
    targets = (np.random.default_rng(0).random(50_000_000) < 0.01).astype(np.int64)
    sampler = BalancedSampler(targets, rank=0, world_size=1)
    drawn = sampler.share()
    assert drawn.dtype == np.int32 and len(drawn) == len(targets)
    assert chisquare(np.bincount(targets[drawn]), [len(targets) / 2] * 2).pvalue > P_MIN


# -- sampled frequencies match the recipes ------------------------------------------------------
def test_balanced_sampler_draws_every_class_equally_often() -> None:
    sampler = BalancedSampler(IMBALANCED, num_samples=DRAWS, world_size=1, rank=0)
    counts = sampled_counts(sampler, IMBALANCED)
    assert chisquare(counts, np.full(3, DRAWS / 3)).pvalue > P_MIN


def test_balanced_sampler_with_alpha_half_weights_classes_by_inverse_square_root() -> None:
    sampler = BalancedSampler(IMBALANCED, alpha=0.5, num_samples=DRAWS, world_size=1, rank=0)
    expected = np.sqrt([800, 150, 50]) / np.sqrt([800, 150, 50]).sum()
    assert chisquare(sampled_counts(sampler, IMBALANCED), expected * DRAWS).pvalue > P_MIN


def test_balanced_sampler_with_alpha_zero_keeps_natural_frequencies() -> None:
    sampler = BalancedSampler(IMBALANCED, alpha=0.0, world_size=1, rank=0)
    np.testing.assert_allclose(sampler.frequencies["sampled"], sampler.frequencies["natural"])


def test_balanced_sampler_default_epoch_length_is_the_dataset_length() -> None:
    assert len(BalancedSampler(IMBALANCED, world_size=1, rank=0)) == len(IMBALANCED)


def test_oversample_sampler_reaches_the_target_positive_fraction() -> None:
    targets = np.repeat([0.0, 1.0], [950, 50]).astype(np.float32)
    sampler = OversampleSampler(
        targets, positive_fraction=0.3, num_samples=DRAWS, world_size=1, rank=0
    )
    counts = sampled_counts(sampler, targets.astype(np.int64))
    assert chisquare(counts, [0.7 * DRAWS, 0.3 * DRAWS]).pvalue > P_MIN


def test_oversample_sampler_rejects_a_single_class() -> None:
    with pytest.raises(ValueError, match="both classes"):
        OversampleSampler(np.zeros(10, dtype=np.float32), world_size=1, rank=0)


def test_uniform_regression_unique_makes_every_distinct_value_equally_likely() -> None:
    values = np.repeat([0.5, 1.0, 2.0, 7.0], [600, 250, 100, 50]).astype(np.float32)
    sampler = UniformRegressionSampler(
        values, bins="unique", num_samples=DRAWS, world_size=1, rank=0
    )
    _, codes = np.unique(values, return_inverse=True)
    assert chisquare(sampled_counts(sampler, codes), np.full(4, DRAWS / 4)).pvalue > P_MIN


def test_uniform_regression_unique_keeps_one_index_entry_per_row() -> None:
    values = np.repeat([0.5, 1.0, 2.0], [60, 30, 10]).astype(np.float32)
    sampler = UniformRegressionSampler(values, bins="unique", world_size=1, rank=0)
    assert len(sampler) == len(values)
    assert epoch_share(sampler, 0).max() < len(values)


@pytest.mark.parametrize("edges", ["uniform", "quantile"])
def test_uniform_regression_bins_have_equal_expected_frequency(edges: str) -> None:
    values = np.random.default_rng(0).exponential(size=2000)
    sampler = UniformRegressionSampler(values, bins=5, edges=edges, world_size=1, rank=0)
    np.testing.assert_allclose(sampler.frequencies["sampled"], 1 / 5)


def test_weights_column_draws_rows_in_proportion_to_the_column() -> None:
    table = pd.DataFrame({"weight": [1.0, 3.0, 0.0, 6.0]})
    sampler = WeightsColumnSampler(
        np.zeros(4), table, column="weight", num_samples=DRAWS, world_size=1, rank=0
    )
    counts = sampled_counts(sampler, np.arange(4))
    assert counts[2] == 0
    assert chisquare(counts[[0, 1, 3]], np.array([0.1, 0.3, 0.6]) * DRAWS).pvalue > P_MIN


def test_weights_column_names_the_manifest_line_of_a_negative_weight() -> None:
    table = pd.DataFrame({"weight": [1.0, -2.0], "line": [2, 3]})
    with pytest.raises(ValueError, match="manifest line 3.*'weight'"):
        WeightsColumnSampler(np.zeros(2), table, column="weight", world_size=1, rank=0)


def test_weights_column_lists_the_columns_when_the_column_is_missing() -> None:
    with pytest.raises(ValueError, match=r"'w'.*\['weight'\]"):
        WeightsColumnSampler(
            np.zeros(1), pd.DataFrame({"weight": [1.0]}), column="w", world_size=1, rank=0
        )


# -- determinism, shares, resume ----------------------------------------------------------------
def test_same_seed_and_epoch_give_the_same_sequence_in_two_constructions() -> None:
    first = epoch_share(BalancedSampler(IMBALANCED, seed=7, world_size=1, rank=0), 3)
    second = epoch_share(BalancedSampler(IMBALANCED, seed=7, world_size=1, rank=0), 3)
    np.testing.assert_array_equal(first, second)


def test_a_new_epoch_draws_a_new_sequence() -> None:
    sampler = BalancedSampler(IMBALANCED, seed=7, world_size=1, rank=0)
    assert not np.array_equal(epoch_share(sampler, 0), epoch_share(sampler, 1))


def test_a_different_seed_draws_a_different_sequence() -> None:
    first = epoch_share(ShuffleSampler(IMBALANCED, seed=0, world_size=1, rank=0), 0)
    second = epoch_share(ShuffleSampler(IMBALANCED, seed=1, world_size=1, rank=0), 0)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_weighted_shares_are_equal_blocks_that_make_up_the_global_draw(world_size: int) -> None:
    num_samples = 2 * CHUNK + 5  # crosses two chunk boundaries
    weights = np.arange(1, 101, dtype=np.float64)
    shares = [
        WeightedSampler(weights, np.zeros(100, dtype=np.int64), num_samples, 3, rank, world_size)
        for rank in range(world_size)
    ]
    total = len(shares[0]) * world_size
    whole = WeightedSampler(weights, np.zeros(100, dtype=np.int64), total, 3, 0, 1)
    for sampler in (*shares, whole):
        sampler.set_epoch(2)
    assert {len(sampler) for sampler in shares} == {-(-num_samples // world_size)}
    np.testing.assert_array_equal(
        np.concatenate([sampler.share() for sampler in shares]), whole.share()
    )


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("num_items", [12, 13])
def test_shuffle_shares_cover_every_item_with_equal_lengths(
    world_size: int, num_items: int
) -> None:
    shares = [
        epoch_share(ShuffleSampler(np.zeros(num_items), rank=rank, world_size=world_size), 1)
        for rank in range(world_size)
    ]
    everything = np.concatenate(shares)
    assert len({len(share) for share in shares}) == 1
    assert set(everything) == set(range(num_items))
    assert len(everything) - num_items == (-num_items) % world_size  # padding only to equal length


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_eval_shards_evaluate_each_item_exactly_once(world_size: int) -> None:
    shards = [list(EvalShardSampler(10, rank, world_size)) for rank in range(world_size)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_resumed_sampler_continues_the_same_sequence_mid_epoch() -> None:
    sampler = BalancedSampler(IMBALANCED, seed=5, world_size=2, rank=1)
    sampler.set_epoch(4)
    iterator = iter(sampler)
    consumed = [next(iterator) for _ in range(123)]
    state = sampler.state_dict()
    resumed = BalancedSampler(IMBALANCED, seed=5, world_size=2, rank=1)
    resumed.load_state_dict(state)
    resumed.set_epoch(4)  # Lightning sets the (same) epoch again on restart
    assert (
        consumed + list(resumed)
        == epoch_share(BalancedSampler(IMBALANCED, seed=5, world_size=2, rank=1), 4).tolist()
    )


def test_resume_state_is_cleared_when_the_next_epoch_starts() -> None:
    sampler = ShuffleSampler(IMBALANCED, world_size=1, rank=0)
    sampler.load_state_dict({"epoch": 2, "yielded": 900, "world_size": 1})
    sampler.set_epoch(3)
    assert len(list(sampler)) == len(IMBALANCED)


def test_a_sampler_state_from_another_data_set_is_refused_naming_both_row_counts() -> None:
    state = ShuffleSampler(IMBALANCED, world_size=1, rank=0).state_dict()
    with pytest.raises(ConfigError, match="saved for 1000 training rows, this run has 999"):
        ShuffleSampler(IMBALANCED[:-1], world_size=1, rank=0).load_state_dict(state)


def test_a_sampler_state_past_the_end_of_the_epoch_is_refused_naming_the_counts() -> None:
    sampler = ShuffleSampler(IMBALANCED[:10], world_size=1, rank=0)
    with pytest.raises(ConfigError, match="says 900 .* epoch 2 .* has 10 per rank"):
        sampler.load_state_dict({"epoch": 2, "yielded": 900, "world_size": 1})


def test_a_finished_epoch_iterates_again_from_the_start() -> None:
    sampler = ShuffleSampler(IMBALANCED, world_size=1, rank=0)
    assert list(sampler) == list(sampler)


# -- reporting and loss-side weights -------------------------------------------------------------
def test_frequency_table_reports_natural_and_sampled_fractions_per_class() -> None:
    table = expected_frequencies(np.array([0, 0, 0, 1]), np.array([1.0, 1.0, 1.0, 3.0]))
    assert table.to_dict("list") == {
        "count": [3, 1],
        "natural": [0.75, 0.25],
        "sampled": [0.5, 0.5],
    }


def test_balanced_class_weights_equalise_the_total_weight_of_each_class() -> None:
    weights = balanced_class_weights(IMBALANCED, num_classes=3)
    totals = weights * torch.tensor([800.0, 150.0, 50.0])
    assert torch.allclose(totals, torch.full((3,), 1000 / 3))


def test_positive_weight_is_negatives_over_positives() -> None:
    assert positive_weight(np.array([0, 0, 0, 1], dtype=np.float32)).tolist() == [3.0]


def test_positive_weight_rejects_targets_without_positives() -> None:
    with pytest.raises(ValueError, match="0 positives"):
        positive_weight(np.zeros(3))


# -- configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["none", "balanced", "oversample", "uniform_regression", "weights_column"]
)
def test_sampler_config_builds_a_seeded_sampler_from_targets_and_table(name: str) -> None:
    cfg = OmegaConf.create({"seed": 11, "sampler": OmegaConf.load(CONF_DIR / f"{name}.yaml")})
    factory = instantiate(cfg.sampler)
    targets = np.array([0, 0, 0, 1, 1, 0], dtype=np.float32)
    sampler = factory(targets=targets, table=pd.DataFrame({"weight": np.ones(6)}))
    sampler.set_epoch(0)
    assert sampler.seed == 11
    assert set(sampler) <= set(range(6)) and len(sampler) == 6


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_sample_keys_of_all_ranks_number_the_global_sequence_once(world_size: int) -> None:
    keys = [
        key
        for rank in range(world_size)
        for key in KeyedSampler(
            ShuffleSampler(IMBALANCED[:10], seed=4, rank=rank, world_size=world_size)
        )
    ]
    positions = sorted(key.position for key in keys)
    assert positions == list(range(len(keys)))
    assert {(key.seed, key.epoch) for key in keys} == {(4, 0)}


def test_sample_keys_carry_the_indices_the_sampler_yields() -> None:
    sampler = BalancedSampler(IMBALANCED, seed=2, world_size=1, rank=0)
    indices = list(sampler)
    assert [key.index for key in KeyedSampler(sampler)] == indices


def test_a_row_drawn_twice_in_an_epoch_gets_two_keys() -> None:
    # Weighted draws repeat rows; each draw must get its own augmentation.
    keys = list(KeyedSampler(BalancedSampler(IMBALANCED, seed=0, world_size=1, rank=0)))
    rows = [key.index for key in keys]
    assert len(set(rows)) < len(rows) and len(set(keys)) == len(keys)


def test_resumed_keyed_sampler_continues_with_the_same_keys_mid_epoch() -> None:
    first = ShuffleSampler(IMBALANCED[:20], seed=1, world_size=1, rank=0)
    first.set_epoch(3)
    keys = KeyedSampler(first)
    iterator = iter(keys)
    for _ in range(7):
        next(iterator)
    resumed = ShuffleSampler(IMBALANCED[:20], seed=1, world_size=1, rank=0)
    resumed.load_state_dict(first.state_dict())
    assert list(KeyedSampler(resumed)) == list(iterator)


def test_keyed_sampler_passes_the_epoch_on() -> None:
    sampler = ShuffleSampler(IMBALANCED[:20], seed=1, world_size=1, rank=0)
    KeyedSampler(sampler).set_epoch(5)
    assert sampler.epoch == 5 and {key.epoch for key in KeyedSampler(sampler)} == {5}


@pytest.mark.parametrize("num_samples", [0, -3, 2.5, True, "10"])
def test_a_num_samples_that_is_not_a_positive_whole_number_is_a_config_error(
    num_samples: object,
) -> None:
    # 0 raised a bare ValueError; 2.5 drew 3 per epoch and True drew 1
    with pytest.raises(ConfigError, match=rf"sampler.num_samples={num_samples!r}"):
        BalancedSampler(np.array([0, 1, 1]), num_samples=num_samples, rank=0, world_size=1)


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), "1"])
def test_an_alpha_that_is_not_a_finite_number_is_a_config_error(alpha: object) -> None:
    # nan raised a bare ValueError from the alias table ("got min nan, max nan")
    with pytest.raises(ConfigError, match=rf"sampler.alpha={alpha!r}"):
        BalancedSampler(np.array([0, 1, 1]), alpha=alpha, rank=0, world_size=1)
