"""data=array_folder: <id>.npy arrays and a labels CSV of id and targets, read by the DataModule."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.manifest import ManifestError


def test_grey_arrays_become_one_channel_clips(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine, size=40)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["input"].shape == (4, 6, 1, 40, 40)  # (B, T, C, H, W)


def test_multi_view_arrays_keep_one_channel_per_view(
    tmp_path: Path, cine_datamodule: Callable[..., VideoDataModule], write_arrays: Callable
) -> None:
    rng = np.random.default_rng(0)
    arrays = {f"s{i}": rng.integers(0, 256, (6, 20, 24, 3), dtype=np.uint8) for i in range(10)}
    labels = write_arrays(tmp_path, arrays, {f"s{i}": str(i) for i in range(10)})
    datamodule = cine_datamodule(labels, label_column="label")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["input"].shape == (4, 6, 3, 32, 32)


def test_the_path_template_names_each_rows_array_and_keeps_the_id_column(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine)
    datamodule.setup("fit")
    table = datamodule.table
    assert [Path(path).name for path in table["path"]] == [f"{i}.npy" for i in table["id"]]
    assert all(Path(path).parent == cine.parent / "arrays" for path in table["path"])


def test_a_template_naming_an_absent_column_lists_the_columns(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine, path_template="arrays/{case}.npy")
    with pytest.raises(ManifestError, match=r"'case'.*columns are: id, age, sex"):
        datamodule.setup("fit")


def test_age_and_sex_of_the_same_ids_are_a_task_switch(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    age = cine_datamodule(cine, label_kind="regression", label_column="age")
    sex = cine_datamodule(cine, label_kind="binary", label_column="sex")
    age.setup("fit")
    sex.setup("fit")
    labels = pd.read_csv(cine).set_index("id")
    assert age.table["id"].tolist() == sex.table["id"].tolist()
    np.testing.assert_allclose(
        age.table["target"].astype(float), labels.loc[age.table["id"], "age"], atol=1e-4
    )
    assert sex.classes == ["0", "1"] and sex.num_outputs == 1 and age.num_outputs == 1
    assert sex.table["target"].tolist() == labels.loc[sex.table["id"], "sex"].tolist()


def test_per_frame_max_norm_applies_to_every_split(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    # mean 0.5, std 0.25: a frame whose maximum is 1 after the division peaks at (1 - 0.5) / 0.25.
    datamodule = cine_datamodule(cine, per_frame_max_norm=True)
    datamodule.setup("fit")
    for split in ("train", "val", "test"):
        clip = datamodule.datasets[split][0]["input"]  # (T, 1, 32, 32)
        np.testing.assert_allclose(clip.amax(dim=(1, 2, 3)).numpy(), 2.0, atol=1e-5)
    assert datamodule.preprocessing()["per_frame_max_norm"] is True


def test_without_per_frame_max_norm_uint8_frames_are_divided_by_255(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine)
    datamodule.setup("fit")
    clip = datamodule.datasets["val"][0]["input"]
    array = np.load(datamodule.split_rows("val")["path"][0])
    np.testing.assert_allclose(
        clip.amax(dim=(1, 2, 3)).numpy(), (array.max(axis=(1, 2)) / 255 - 0.5) / 0.25, atol=1e-5
    )


def test_a_clip_reads_only_its_frames_from_the_memory_mapped_array(
    tmp_path: Path, cine_datamodule: Callable[..., VideoDataModule], write_arrays: Callable
) -> None:
    big = np.zeros((200, 256, 256), dtype=np.uint8)  # 13 MB per file
    labels = write_arrays(
        tmp_path, {f"s{i}": big for i in range(10)}, {f"s{i}": "1" for i in range(10)}
    )
    datamodule = cine_datamodule(labels, label_column="label", frames=4)
    datamodule.setup("fit")
    tracemalloc.start()
    datamodule.datasets["train"][0]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < big.nbytes / 10


def test_a_corrupt_array_is_replaced_by_another_sample_and_recorded(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine)
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    Path(dataset.paths[2]).write_bytes(b"\x93NUMPY\x01\x00garbage")
    item = dataset[2]
    assert item["index"] != 2
    assert item["target"].item() == pytest.approx(dataset.targets[item["index"]])
    (record,) = item["skipped"]
    assert record.path == dataset.paths[2]
    assert record.reason.startswith("not a readable NumPy array")


def test_predict_and_test_loaders_yield_the_test_split_in_order(
    cine: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(cine, batch_size=1)
    datamodule.setup("test")
    for loader in (datamodule.test_dataloader(), datamodule.predict_dataloader()):
        indices = [index for batch in loader for index in batch["index"].tolist()]
        assert indices == list(range(len(datamodule.split_rows("test"))))
