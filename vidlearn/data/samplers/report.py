"""The natural and the expected sampled frequency of each class (or label bin)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Targets with at most this many distinct integer values are reported per value, others in bins.
MAX_REPORTED_VALUES = 50
REPORT_BINS = 10


def report_groups(targets: np.ndarray) -> np.ndarray | pd.Categorical:
    """Class indices as they are; other numeric targets as (up to) 10 quantile bins."""
    targets = np.asarray(targets)
    classes = targets.astype(np.int64)
    if (
        np.array_equal(classes, targets)
        and np.count_nonzero(np.bincount(classes - classes.min())) <= MAX_REPORTED_VALUES
    ):
        return classes
    return pd.qcut(targets, q=REPORT_BINS, duplicates="drop")


def expected_frequencies(groups: np.ndarray | pd.Categorical, weights: np.ndarray) -> pd.DataFrame:
    """One row per group: `count`, `natural` fraction of items, `sampled` fraction of draws.

    `sampled` is the expected share of a weighted draw, sum of the group's weights over all
    weights; with equal weights it equals `natural`.
    """
    groups = report_groups(groups) if isinstance(groups, np.ndarray) else groups
    codes, names = pd.factorize(groups, sort=True)
    counts = np.bincount(codes, minlength=len(names))
    mass = np.bincount(codes, weights=np.asarray(weights, dtype=np.float64), minlength=len(names))
    return pd.DataFrame(
        {"count": counts, "natural": counts / counts.sum(), "sampled": mass / mass.sum()},
        index=pd.Index(names, name="group"),
    )
