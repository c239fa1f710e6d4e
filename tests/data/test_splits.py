"""Seeded, stratified, group-disjoint splits and folds."""

import numpy as np
import pytest

from vidlearn.data.splits import SPLITS, assign_folds, assign_splits

LABELS = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
GROUPS = [f"subject{i // 4}" for i in range(100)]


def test_groups_never_straddle_two_splits() -> None:
    splits = assign_splits(LABELS, GROUPS, 0.2, 0.2, seed=0)
    for group in set(GROUPS):
        assert len({s for s, g in zip(splits, GROUPS, strict=True) if g == group}) == 1


def test_split_sizes_follow_the_fractions() -> None:
    splits = assign_splits(LABELS, None, 0.2, 0.1, seed=0)
    assert [int((splits == s).sum()) for s in ("train", "val", "test")] == [70, 20, 10]


def test_each_split_keeps_the_label_mix() -> None:
    splits = assign_splits(LABELS, None, 0.2, 0.2, seed=1)
    labels = np.asarray(LABELS)
    for split in ("train", "val", "test"):
        share_of_a = (labels[splits == split] == "a").mean()
        assert share_of_a == pytest.approx(0.6, abs=0.05)


def test_same_seed_same_split_and_other_seed_differs() -> None:
    first = assign_splits(LABELS, GROUPS, 0.2, 0.2, seed=3)
    assert (first == assign_splits(LABELS, GROUPS, 0.2, 0.2, seed=3)).all()
    assert (first != assign_splits(LABELS, GROUPS, 0.2, 0.2, seed=4)).any()


def test_folds_are_disjoint_complete_and_stratified() -> None:
    folds = assign_folds(LABELS, None, folds=5, seed=0)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    labels = np.asarray(LABELS)
    for fold in range(5):
        assert (folds == fold).sum() == 20
        assert (labels[folds == fold] == "c").sum() == 2


def test_grouped_folds_keep_groups_together() -> None:
    folds = assign_folds(LABELS, GROUPS, folds=5, seed=0)
    for group in set(GROUPS):
        assert len({f for f, g in zip(folds, GROUPS, strict=True) if g == group}) == 1


def test_fractions_must_leave_a_training_share() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        assign_splits(LABELS, None, 0.7, 0.5, seed=0)


def test_blank_group_cells_are_each_a_group_of_their_own_row() -> None:
    """60 ungrouped rows are split like rows without groups, not sent to one split together."""
    labels = ["a", "b"] * 30
    splits = assign_splits(labels, [""] * 58 + ["  ", ""], 0.2, 0.2, seed=0)
    assert {split: list(splits).count(split) for split in SPLITS} == {
        "train": 36,
        "val": 12,
        "test": 12,
    }
