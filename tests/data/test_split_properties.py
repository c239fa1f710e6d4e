"""Properties of seeded splits and folds and of prepared fold files, over generated labels, groups,
fractions and fold assignments (vidlearn issue 20, item A).

The stratification property, stated precisely: without groups every (part, label) count is
within one row of its share, |count - fraction * label_count| < 1, since rows are dealt one at
a time to the part lagging furthest behind its share of that label. With groups only whole
groups move, so the promise is group-disjointness and completeness, not the bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidlearn.data.folds import fold_splits, read_fold
from vidlearn.data.manifest import ManifestError
from vidlearn.data.splits import SPLITS, assign_folds, assign_splits

labels = st.lists(st.sampled_from("abcd"), min_size=1, max_size=80)
seeds = st.integers(0, 2**32 - 1)
fractions = st.sampled_from([0.0, 0.1, 0.2, 0.25, 1 / 3, 0.5])


def parts_of(assignment: np.ndarray, names: list) -> np.ndarray:
    """Index of each row's part in `names`; fails if any row has a value outside them."""
    index = {name: i for i, name in enumerate(names)}
    return np.asarray([index[value] for value in assignment])


def assert_within_one_row_of_the_shares(
    parts: np.ndarray, row_labels: list[str], shares: list[float]
) -> None:
    for label in set(row_labels):
        of_label = parts[np.asarray(row_labels) == label]
        counts = np.bincount(of_label, minlength=len(shares))
        np.testing.assert_array_less(np.abs(counts - np.asarray(shares) * len(of_label)), 1.0)


@given(labels, fractions, fractions, seeds)
def test_splits_without_groups_hold_every_label_within_one_row_of_its_share(
    row_labels: list[str], val: float, test: float, seed: int
) -> None:
    """Every row in exactly one split, each (split, label) count within one row of its share,
    an empty share empty.

    Caught (planted): dealing every row to the part lagging in rows of all labels together
    (deficits summed without the group's label counts) breaks the per-label bound.
    """
    split = assign_splits(row_labels, None, val, test, seed)
    assert len(split) == len(row_labels)
    parts = parts_of(split, list(SPLITS))
    assert_within_one_row_of_the_shares(parts, row_labels, [1 - val - test, val, test])


@given(labels, st.integers(2, 7), seeds)
def test_folds_without_groups_hold_every_label_within_one_row_of_its_share(
    row_labels: list[str], folds: int, seed: int
) -> None:
    """Fold numbers are 0..folds-1 and each (fold, label) count is within one row of 1/folds.

    Caught (planted): as for splits, label-blind deficits.
    """
    parts = parts_of(assign_folds(row_labels, None, folds, seed), list(range(folds)))
    assert_within_one_row_of_the_shares(parts, row_labels, [1 / folds] * folds)


@given(
    st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 15)), min_size=1, max_size=80),
    fractions,
    fractions,
    seeds,
)
def test_groups_never_straddle_two_splits(
    rows: list[tuple[str, int]], val: float, test: float, seed: int
) -> None:
    """All rows of a group land in one split; a split with a zero share gets no rows.

    Caught (planted): dealing rows round robin instead of by their group's part.
    """
    row_labels = [label for label, _ in rows]
    groups = [f"subject{group}" for _, group in rows]
    split = assign_splits(row_labels, groups, val, test, seed)
    split_of_group = pd.Series(split).groupby(groups).nunique()
    assert (split_of_group == 1).all()
    for name, share in zip(SPLITS, [1 - val - test, val, test], strict=True):
        if share == 0:
            assert name not in set(split)


# -- prepared fold files ------------------------------------------------------------------------
@pytest.mark.filterwarnings("error")
@given(st.lists(st.sampled_from(["train", "val", ""]), min_size=1, max_size=30), st.randoms())
def test_fold_files_give_each_manifest_row_the_split_that_lists_it(
    tmp_path: Path, listed: list[str], shuffler: object
) -> None:
    """Each row gets the split whose file lists it ('' if neither), whatever the files' order.

    Caught: with no listed path in the manifest, `paths.map(...).fillna("")` filled a float
    column with a string (a Pandas4Warning, an error in pandas 4).
    Caught (planted): taking the splits in the files' row order instead of looking each
    manifest path up gives shuffled files' rows the wrong split.
    """
    paths = [f"clip_{i}.mp4" for i in range(len(listed))]
    for split in ("train", "val"):
        names = [path for path, where in zip(paths, listed, strict=True) if where == split]
        shuffler.shuffle(names)
        pd.DataFrame({"path": names}, dtype=str).to_csv(tmp_path / f"f0_{split}.csv", index=False)
    rows = read_fold("f0_{split}.csv", 0, tmp_path, base=tmp_path, path_column="path")
    manifest_paths = pd.Series([str(tmp_path / path) for path in paths])
    assert fold_splits(manifest_paths, rows, tmp_path / "labels.csv").tolist() == listed


def test_a_sample_in_both_fold_files_is_refused_with_its_lines(tmp_path: Path) -> None:
    (tmp_path / "f0_train.csv").write_text("path\na.mp4\nb.mp4\n")
    (tmp_path / "f0_val.csv").write_text("path\nc.mp4\nb.mp4\n")
    with pytest.raises(
        ManifestError, match=r"f0_val.csv:\s+line.*\n\s+3\s+path\s+also in the train"
    ):
        read_fold("f0_{split}.csv", 0, tmp_path, base=tmp_path, path_column="path")
