"""The rebalancing recipes as weighted samplers: each turns targets (or a column) into weights.

All are called by the DataModule as `sampler(targets=..., table=...)`, `targets` being the
encoded training targets aligned with the rows of `table`, the training split's manifest rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vidlearn.data.samplers.epoch_sampler import WeightedSampler
from vidlearn.data.samplers.report import report_groups
from vidlearn.errors import ConfigError

EDGES = ("uniform", "quantile")


class BalancedSampler(WeightedSampler):
    """Class c drawn with weight 1 / count_c^alpha per item: alpha 1 equalises classes, 0 is natural.

    `table` is unused (every sampler is called with both).
    """

    def __init__(
        self,
        targets: np.ndarray,
        table: pd.DataFrame | None = None,
        alpha: float = 1.0,
        num_samples: int | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        number = isinstance(alpha, int | float) and not isinstance(alpha, bool)
        if not (number and math.isfinite(alpha)):
            raise ConfigError(
                f"sampler.alpha={alpha!r} must be a finite number (1 equalises the classes, "
                "0 keeps their natural frequency)"
            )
        classes = class_indices(targets, "BalancedSampler")
        counts = np.bincount(classes).astype(np.float64)
        per_class = np.divide(1.0, counts**alpha, out=np.zeros_like(counts), where=counts > 0)
        super().__init__(per_class[classes], classes, num_samples, seed, rank, world_size)


class OversampleSampler(WeightedSampler):
    """Binary targets: positives make up `positive_fraction` of the draws (0.5 = balanced).

    `table` is unused (every sampler is called with both).
    """

    def __init__(
        self,
        targets: np.ndarray,
        table: pd.DataFrame | None = None,
        positive_fraction: float = 0.5,
        num_samples: int | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if not 0.0 < positive_fraction < 1.0:
            raise ConfigError(
                f"sampler.positive_fraction must be in (0, 1), got {positive_fraction}"
            )
        classes = class_indices(targets, "OversampleSampler")
        counts = np.bincount(classes, minlength=2)
        if len(counts) != 2 or counts.min() == 0:
            raise ConfigError(
                f"OversampleSampler needs binary 0/1 targets with both classes present, "
                f"got counts {counts.tolist()}; use sampler=balanced for multiclass."
            )
        per_class = np.array([(1.0 - positive_fraction) / counts[0], positive_fraction / counts[1]])
        super().__init__(per_class[classes], classes, num_samples, seed, rank, world_size)


class UniformRegressionSampler(WeightedSampler):
    """Bin a numeric target and weight each item by 1 / (its bin's count): a flat label histogram.

    `bins` is a number of bins with `edges` "uniform" (equal width) or "quantile" (equal count;
    tied edges merge), or "unique": one bin per distinct value, which reproduces the original
    recipe's per-value duplication (every distinct value equally likely) without copying rows.
    `table` is unused (every sampler is called with both).
    """

    def __init__(
        self,
        targets: np.ndarray,
        table: pd.DataFrame | None = None,
        bins: int | str = 10,
        edges: str = "uniform",
        num_samples: int | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if np.issubdtype(np.asarray(targets).dtype, np.integer):
            raise ConfigError(
                "sampler=uniform_regression bins the numeric targets of task=regression, and "
                "these are class indices; use sampler=balanced to balance classes."
            )
        values = np.asarray(targets, dtype=np.float64)
        if len(values) == 0 or not np.all(np.isfinite(values)):
            raise ConfigError("UniformRegressionSampler needs finite regression targets")
        groups = label_bins(values, bins, edges)
        counts = np.bincount(groups.codes)
        super().__init__(1.0 / counts[groups.codes], groups, num_samples, seed, rank, world_size)


class WeightsColumnSampler(WeightedSampler):
    """Per-row weights read from the manifest column `column` (finite, >= 0, not all zero)."""

    def __init__(
        self,
        targets: np.ndarray,
        table: pd.DataFrame,
        column: str,
        num_samples: int | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if column not in table.columns:
            raise ConfigError(
                f"sampler.column={column!r} is not a manifest column; the training rows "
                f"have {list(table.columns)}."
            )
        if len(table) != len(targets):
            raise ValueError(
                f"the table has {len(table)} rows but there are {len(targets)} targets"
            )
        weights = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            where = (
                f"manifest line {table['line'].iloc[row]}"
                if "line" in table.columns
                else f"row {row}"
            )
            raise ConfigError(
                f"{where}: weight column {column!r} holds {table[column].iloc[row]!r}; "
                f"weights must be finite numbers >= 0 ({int(bad.sum())} bad rows)."
            )
        if weights.sum() <= 0:
            raise ConfigError(
                f"every weight in column {column!r} is 0; give some rows a positive weight"
            )
        super().__init__(weights, report_groups(targets), num_samples, seed, rank, world_size)


def class_indices(targets: np.ndarray, name: str) -> np.ndarray:
    """Integer class indices from encoded targets (int64 classes or float32 0/1)."""
    targets = np.asarray(targets)
    classes = targets.astype(np.int64)
    if len(targets) == 0 or classes.min() < 0 or not np.array_equal(classes, targets):
        raise ConfigError(
            f"{name} needs non-negative integer class targets; for a regression "
            "target use sampler=uniform_regression."
        )
    return classes


def label_bins(values: np.ndarray, bins: int | str, edges: str) -> pd.Categorical:
    """The bin of each value as a categorical whose categories name the bins."""
    if bins == "unique":
        distinct, codes = np.unique(values, return_inverse=True)
        return pd.Categorical.from_codes(codes, categories=bin_names(distinct[:, None], "{}"))
    if not isinstance(bins, int) or bins < 1:
        raise ConfigError(f"sampler.bins must be a positive integer or 'unique', got {bins!r}")
    if edges not in EDGES:
        raise ConfigError(f"sampler.edges must be one of {EDGES}, got {edges!r}")
    if edges == "uniform":
        boundaries = np.linspace(values.min(), values.max(), bins + 1)
    else:
        boundaries = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    boundaries = np.unique(boundaries)  # tied edges (all values equal, say) merge their bins
    num_bins = max(len(boundaries) - 1, 1)
    codes = np.clip(np.searchsorted(boundaries, values, side="right") - 1, 0, num_bins - 1)
    ends = np.stack([boundaries[:num_bins], boundaries[-num_bins:]], axis=1)  # (num_bins, 2)
    return pd.Categorical.from_codes(codes, categories=bin_names(ends, "[{}, {}]"))


def bin_names(numbers: np.ndarray, template: str) -> list[str]:
    """One name per row of `numbers` in `template`, in `:g` format unless that makes two rows
    look alike (1 and 1.0000001); then with all 17 digits, which tell any two floats apart."""
    for digits in (6, 17):
        names = [template.format(*(f"{x:.{digits}g}" for x in row)) for row in numbers]
        if len(set(names)) == len(names):
            break
    return names
