"""Splits of the cine recipe: prepared fold files (data.fold_files), generated folds
(data.folds), and the seeded 80/10/10 split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.manifest import ManifestError

FOLD_FILES = "folds/fold_{fold}_{split}.csv"


def ids_by_split(datamodule: VideoDataModule) -> dict[str, set[str]]:
    datamodule.setup("fit")
    return {split: set(datamodule.split_rows(split)["id"]) for split in ("train", "val", "test")}


def test_fold_k_trains_and_validates_on_the_rows_of_its_files(
    shared_cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    for fold in range(5):
        splits = ids_by_split(cine_datamodule(shared_cine, fold_files=FOLD_FILES, fold=fold))
        for split in ("train", "val"):
            listed = pd.read_csv(shared_cine.parent / "folds" / f"fold_{fold}_{split}.csv")["id"]
            assert splits[split] == set(listed)
        assert splits["test"] == set()


def test_prepared_validation_folds_are_disjoint_and_cover_every_id(
    shared_cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    val_folds = [
        ids_by_split(cine_datamodule(shared_cine, fold_files=FOLD_FILES, fold=k))["val"]
        for k in range(5)
    ]
    assert sum(len(ids) for ids in val_folds) == 20
    assert set().union(*val_folds) == set(pd.read_csv(shared_cine)["id"])


def test_an_id_in_both_files_of_a_fold_is_refused_with_both_lines(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    folds = cine.parent / "folds"
    train = pd.read_csv(folds / "fold_0_train.csv")
    val = pd.read_csv(folds / "fold_0_val.csv")
    pd.concat([val, train.iloc[[3]]]).to_csv(folds / "fold_0_val.csv", index=False)
    datamodule = cine_datamodule(cine, fold_files=FOLD_FILES, fold=0)
    with pytest.raises(
        ManifestError, match=rf"{len(val) + 2} +path +also in the train file, line 5"
    ):
        datamodule.setup("fit")


def test_ids_of_the_fold_files_missing_from_the_labels_are_all_reported(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    labels = pd.read_csv(cine)
    labels.iloc[2:].to_csv(cine, index=False)  # case_0000 and case_0001 lose their labels
    datamodule = cine_datamodule(cine, fold_files=FOLD_FILES, fold=1)
    with pytest.raises(ManifestError, match="2 problem") as error:
        datamodule.setup("fit")
    assert "'case_0000' has no row in the labels" in str(error.value)
    assert "'case_0001' has no row in the labels" in str(error.value)


def test_labels_rows_that_the_fold_files_do_not_list_are_dropped_and_counted(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    folds = cine.parent / "folds"
    train = pd.read_csv(folds / "fold_2_train.csv")
    train.iloc[1:].to_csv(folds / "fold_2_train.csv", index=False)
    datamodule = cine_datamodule(cine, fold_files=FOLD_FILES, fold=2)
    datamodule.setup("fit")
    assert train["id"][0] not in set(datamodule.table["id"])
    assert datamodule.rows.dropped["reason"].tolist() == ["not in the fold 2 files"]


def test_a_fold_without_files_names_the_files_that_exist(
    shared_cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(shared_cine, fold_files=FOLD_FILES, fold=7)
    with pytest.raises(ManifestError, match=r"fold_7_train.csv .* files there: fold_0_train.csv"):
        datamodule.setup("fit")


def test_fold_files_need_a_fold_and_exclude_generated_folds(
    shared_cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    with pytest.raises(ValueError, match="needs data.fold"):
        cine_datamodule(shared_cine, fold_files=FOLD_FILES)
    with pytest.raises(ValueError, match="not both"):
        cine_datamodule(shared_cine, fold_files=FOLD_FILES, folds=5, fold=0)


def test_generated_folds_are_disjoint_complete_and_stratified(
    shared_cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    sex = pd.read_csv(shared_cine, dtype=str).set_index("id")["sex"]
    val_folds = []
    for fold in range(5):
        datamodule = cine_datamodule(
            shared_cine, label_kind="binary", label_column="sex", folds=5, fold=fold
        )
        splits = ids_by_split(datamodule)
        assert splits["train"].isdisjoint(splits["val"])
        assert len(splits["train"]) + len(splits["val"]) == 20
        # 10 of each sex over 5 folds: two of each in every validation fold.
        assert sex[sorted(splits["val"])].value_counts().to_dict() == {"0": 2, "1": 2}
        val_folds.append(splits["val"])
    assert set().union(*val_folds) == set(sex.index)
    assert sum(len(ids) for ids in val_folds) == 20


def test_generated_folds_keep_each_group_in_one_fold(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    labels = pd.read_csv(cine)
    labels["patient"] = [f"p{i // 2}" for i in range(len(labels))]  # two scans per patient
    labels.to_csv(cine, index=False)
    for fold in range(5):
        datamodule = cine_datamodule(cine, group_column="patient", folds=5, fold=fold)
        datamodule.setup("fit")
        patients = datamodule.table.groupby("group")["split"].nunique()
        assert patients.max() == 1


def test_the_default_split_is_a_seeded_80_10_10(
    shared_cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    first = ids_by_split(cine_datamodule(shared_cine, seed=3))
    again = ids_by_split(cine_datamodule(shared_cine, seed=3))
    other = ids_by_split(cine_datamodule(shared_cine, seed=4))
    assert {split: len(ids) for split, ids in first.items()} == {"train": 16, "val": 2, "test": 2}
    assert first == again
    assert first != other


def test_generated_folds_leave_the_manifests_test_rows_in_the_test_split(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    """Issue 21 item 3: data.folds overrode the split column, 8 of 9 test rows went into folds."""
    labels = pd.read_csv(cine, dtype=str)
    labels["split"] = ["test" if i % 5 == 0 else "train" for i in range(len(labels))]
    labels.to_csv(cine, index=False)
    held_out = set(labels.loc[labels["split"] == "test", "id"])
    for fold in range(3):
        splits = ids_by_split(cine_datamodule(cine, split_column="split", folds=3, fold=fold))
        assert splits["test"] == held_out
        assert (splits["train"] | splits["val"]).isdisjoint(held_out)
        assert len(splits["train"]) + len(splits["val"]) == len(labels) - len(held_out)
