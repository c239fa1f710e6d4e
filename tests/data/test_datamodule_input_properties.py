"""Property: any small manifest of frame arrays sets up and loads, or stops with a UserError.

Labels (numeric-looking, blank, padded, accented), split cells (any case, blank, absent),
groups, array dtypes and shapes (T=1, fewer frames than a clip, grey or several views mixed),
task kinds, weighted samplers with a weight column of any cells, generated folds, per-frame max
normalisation and normalisation on the device are drawn together. `VideoDataModule.setup`
must raise a `vidlearn.errors.UserError` (which the console scripts print without a traceback)
or give datasets whose every item is `(frames, channels, size, size)` and whose training loader
collates a batch; never another exception.

Planted bugs these tests caught: `VideoClipDataset` without its channel check (a 2-view array
among grey ones failed in collate: "stack expects each tensor to be equal size"), and
`stratification_labels` binning every regression label, text too (IndexError in
`stratified_groups` when no label was a number).
"""

from __future__ import annotations

import csv
import logging
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data.clip_sampling import RandomClipSampler, UniformSegmentSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.samplers import (
    BalancedSampler,
    OversampleSampler,
    UniformRegressionSampler,
    WeightsColumnSampler,
)
from vidlearn.errors import UserError

ROW = st.tuples(
    st.sampled_from(["a", "b", "1", "01", "", "nan", " c ", "é"]),  # label
    st.sampled_from(["train", "val", "test", "Train", " val", ""]),  # split cell
    st.sampled_from(["u1", "f4", "?", "i2"]),  # dtype
    st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), st.sampled_from([0, 1, 2])),
    st.sampled_from(["", "g1", "g2"]),  # group
    st.sampled_from(["1", "0", "2.5", "", "x", "1e308"]),  # weight
)
SAMPLERS = {
    "shuffle": None,
    "balanced": partial(BalancedSampler),
    "oversample": partial(OversampleSampler),
    "uniform_regression": partial(UniformRegressionSampler),
    "weights_column": partial(WeightsColumnSampler, column="weight"),
}
SIZE = 4


@settings(max_examples=30)
@given(
    rows=st.lists(ROW, min_size=1, max_size=7),
    kind=st.sampled_from(["multiclass", "binary", "regression"]),
    split_column=st.booleans(),
    groups=st.booleans(),
    sampler=st.sampled_from(sorted(SAMPLERS)),
    folds=st.sampled_from([None, 2, 3]),
    per_frame_max_norm=st.booleans(),
    normalise_on_device=st.booleans(),
    frames=st.integers(1, 6),
)
def test_any_manifest_of_arrays_loads_or_raises_a_user_error(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list,
    kind: str,
    split_column: bool,
    groups: bool,
    sampler: str,
    folds: int | None,
    per_frame_max_norm: bool,
    normalise_on_device: bool,
    frames: int,
) -> None:
    root = tmp_path_factory.mktemp("manifest")
    lines = [["path", "label", "split", "group", "weight"]]
    for i, (label, split, dtype, (length, height, width, views), group, weight) in enumerate(rows):
        shape = (length, height, width, views) if views else (length, height, width)
        np.save(root / f"{i}.npy", (np.arange(np.prod(shape)) % 7).reshape(shape).astype(dtype))
        lines.append([f"{i}.npy", label, split, group, weight])
    with open(root / "manifest.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(lines)
    datamodule = VideoDataModule(
        label_kind=kind,
        manifest=str(root / "manifest.csv"),
        frames=frames,
        size=SIZE,
        batch_size=2,
        train_clip_sampler=RandomClipSampler(frames),
        eval_clip_sampler=UniformSegmentSampler(frames),
        num_workers=0,
        probe_index=None,
        split_column="split" if split_column else None,
        group_column="group" if groups else None,
        folds=folds,
        fold=0 if folds else None,
        sampler=SAMPLERS[sampler],
        per_frame_max_norm=per_frame_max_norm,
        normalise_on_device=normalise_on_device,
        val_fraction=0.3,
        test_fraction=0.2,
        max_bad_fraction=0.5,
    )
    logging.disable(logging.WARNING)  # skipped files are expected here, and logged per item
    try:
        datamodule.setup("fit")
        for dataset in datamodule.datasets.values():
            for index in range(len(dataset)):
                shape = tuple(dataset[index]["input"].shape)
                assert shape == (frames, datamodule.channels, SIZE, SIZE)
        next(iter(datamodule.train_dataloader()))
    except UserError:
        pass
    finally:
        logging.disable(logging.NOTSET)
