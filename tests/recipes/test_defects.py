"""Defects of the cardiac cine recipe's data generator that vidlearn must not have, one test each.

The original (a keras.utils.Sequence over <id>.npy files):
1. warned about a missing file and reused the previous sample's array under the new label;
2. sized its batches from all requested ids, not the ids whose files exist, so absent files
   shifted or overflowed batches;
3. could not be constructed in test mode (a misspelt argument);
4. called a target regression only with more than 3 distinct values;
5. flattened the label histogram by duplicating samples once per distinct label value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.manifest import ManifestError
from vidlearn.data.samplers import UniformRegressionSampler

FOLD_FILES = "folds/fold_{fold}_{split}.csv"


def test_missing_files_are_all_listed_before_training(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    for name in ("case_0004", "case_0011"):
        os.remove(cine.parent / "arrays" / f"{name}.npy")
    datamodule = cine_datamodule(cine)
    with pytest.raises(ManifestError, match="2 problem") as error:
        datamodule.setup("fit")
    # labels.csv line = row + 2 (the header is line 1)
    assert re.search(r"\b6 +path +file not found: \S+/case_0004.npy", str(error.value))
    assert re.search(r"\b13 +path +file not found: \S+/case_0011.npy", str(error.value))


def test_a_file_that_disappears_during_training_is_replaced_with_its_substitutes_own_label(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine)
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    os.remove(dataset.paths[5])
    items = [dataset[index] for index in range(len(dataset))]
    substitute = items[5]
    assert substitute["index"] != 5
    assert substitute["target"].item() == pytest.approx(dataset.targets[substitute["index"]])
    assert substitute["target"].item() != pytest.approx(dataset.targets[5])
    (record,) = substitute["skipped"]
    assert record.path == dataset.paths[5] and record.reason.startswith("file not found")
    assert all(item["index"] == i and not item["skipped"] for i, item in enumerate(items) if i != 5)


def test_an_epoch_yields_each_listed_row_once_with_its_own_label(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    # Batches are cut from the split's rows, whose files were all checked at setup (an absent
    # one stops the run there, see above), so nothing shifts and the last batch is just shorter.
    folds = cine.parent / "folds"
    val_ids = pd.read_csv(folds / "fold_0_val.csv")["id"]
    datamodule = cine_datamodule(cine, fold_files=FOLD_FILES, fold=0, batch_size=3)
    datamodule.setup("fit")
    rows = datamodule.split_rows("val")
    loader = datamodule.val_dataloader()
    batches = list(loader)
    assert len(loader) == len(batches) == math.ceil(len(val_ids) / 3)
    indices = np.concatenate([batch["index"].numpy() for batch in batches])
    targets = np.concatenate([batch["target"].numpy() for batch in batches])
    assert sorted(indices) == list(range(len(val_ids)))
    np.testing.assert_allclose(targets, rows["target"].to_numpy(dtype=float)[indices], rtol=1e-6)


def test_test_and_predict_loaders_can_be_built_and_read(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine, label_kind="binary", label_column="sex")
    datamodule.setup("test")
    for loader in (datamodule.test_dataloader(), datamodule.predict_dataloader()):
        batch = next(iter(loader))
        assert batch["input"].shape == (2, 6, 1, 32, 32)
        assert batch["target"].tolist() == datamodule.split_rows("test")["target"].tolist()


def test_a_regression_target_with_three_distinct_values_stays_regression(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    labels = pd.read_csv(cine)
    labels["age"] = np.resize([30.0, 50.0, 70.0], len(labels))
    labels.to_csv(cine, index=False)
    datamodule = cine_datamodule(cine)
    datamodule.setup("fit")
    assert datamodule.classes == [] and datamodule.num_outputs == 1
    assert datamodule.table["target"].tolist() == labels["age"].tolist()


def test_uniform_regression_by_value_flattens_the_histogram_without_duplicating_rows(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    labels = pd.read_csv(cine)
    labels["age"] = np.repeat([40.0, 60.0, 80.0], [12, 5, 3])  # skewed, 3 distinct values
    labels.to_csv(cine, index=False)
    sampler = partial(UniformRegressionSampler, bins="unique", world_size=1, rank=0)
    datamodule = cine_datamodule(cine, sampler=sampler, val_fraction=0.0, test_fraction=0.0)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    assert len(datamodule.datasets["train"]) == len(loader.sampler) == 20
    np.testing.assert_allclose(datamodule.train_sampler.frequencies["sampled"], 1 / 3)
    assert datamodule.train_sampler.frequencies["count"].tolist() == [12, 5, 3]
