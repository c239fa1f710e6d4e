"""Seeded, stratified, group-aware train/val/test splits and k-fold assignments.

Groups (patient, subject, camera) never straddle two splits, so no subject leaks from training
into evaluation. Stratification keeps each split's label mix close to the whole set's. Unlike the
original posture recipe (last 30% of the arrays as validation, unseeded test split), every split
here is a pure function of the rows, the labels and the seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vidlearn.errors import ConfigError

SPLITS = ("train", "val", "test")


def stratified_groups(
    labels: Sequence[str],
    groups: Sequence[str] | None,
    fractions: Sequence[float],
    seed: int,
) -> np.ndarray:
    """Assign every row to one of `len(fractions)` parts; returns the part index per row.

    Whole groups (each row its own group when `groups` is None or its cell blank) are dealt out in a seeded random
    order, each to the part whose label counts lag furthest behind its target share, so parts are
    stratified and group-disjoint.
    """
    fractions = np.asarray(fractions, dtype=float)
    if np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"split fractions {fractions.tolist()} must be >= 0 and sum to 1")
    label_codes, label_names = pd.factorize(pd.Series(list(labels), dtype=str))
    group_codes = _group_codes(groups, len(label_codes))
    num_labels, num_groups = len(label_names), int(group_codes.max()) + 1 if len(group_codes) else 0
    # counts[g, l]: rows of label l in group g
    counts = np.zeros((num_groups, num_labels))
    np.add.at(counts, (group_codes, label_codes), 1)
    targets = fractions[:, None] * counts.sum(axis=0)[None, :]  # (parts, labels)
    filled = np.zeros_like(targets)
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_groups)
    # Big groups first (stable within equal sizes) so small ones can even out the remainder.
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    part_of_group = np.empty(num_groups, dtype=np.int64)
    for group in order:
        deficit = ((targets - filled) * counts[group][None, :]).sum(axis=1)
        deficit[fractions == 0] = -np.inf
        part = int(np.argmax(deficit))
        part_of_group[group] = part
        filled[part] += counts[group]
    return part_of_group[group_codes]


def _group_codes(groups: Sequence[str] | None, rows: int) -> np.ndarray:
    """A group number per row; a blank group cell (or no groups) is a group of its own row."""
    if groups is None:
        return np.arange(rows)
    cells = pd.Series(list(groups), dtype=str).str.strip()
    blank = cells.eq("").to_numpy()
    cells[blank] = [f"\0row{index}" for index in np.flatnonzero(blank)]  # not a writable cell
    return pd.factorize(cells)[0]


def assign_splits(
    labels: Sequence[str],
    groups: Sequence[str] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> np.ndarray:
    """Return 'train' / 'val' / 'test' per row, stratified by label and disjoint by group."""
    fractions = [1.0 - val_fraction - test_fraction, val_fraction, test_fraction]
    parts = stratified_groups(labels, groups, fractions, seed)
    return np.asarray(SPLITS, dtype=object)[parts]


def assign_folds(
    labels: Sequence[str], groups: Sequence[str] | None, folds: int, seed: int
) -> np.ndarray:
    """Return a fold number 0..folds-1 per row, stratified by label and disjoint by group."""
    if folds < 2:
        raise ConfigError(f"data.folds must be at least 2, got {folds}")
    return stratified_groups(labels, groups, [1.0 / folds] * folds, seed)
