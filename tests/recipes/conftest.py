"""Tiny cine data sets and a VideoDataModule built as conf/data/array_folder.yaml builds it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from vidlearn.data.clip_sampling import UniformSegmentSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.demo.cine import make_cine

TINY_CINE = {"num_samples": 20, "frames": 6, "size": 32, "folds": 5}
FOLD_FILES = "folds/fold_{fold}_{split}.csv"


@pytest.fixture(scope="session")
def shared_cine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """labels.csv of 20 demo cine arrays (6 x 32 x 32 uint8) with 5 prepared folds; read only."""
    return make_cine(tmp_path_factory.mktemp("cine"), seed=0, **TINY_CINE)


@pytest.fixture
def cine(shared_cine: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny cine data set, for tests that delete or damage files."""
    copy = tmp_path / "cine"
    shutil.copytree(shared_cine.parent, copy)
    return copy / "labels.csv"


@pytest.fixture
def cine_datamodule() -> Callable[..., VideoDataModule]:
    """Build a VideoDataModule over a labels CSV with array_folder.yaml's settings.

    Keyword arguments override them; clips are all 6 frames, 32 x 32, no workers.
    """

    def build(manifest: Path, **overrides: Any) -> VideoDataModule:
        frames = overrides.pop("frames", TINY_CINE["frames"])
        options: dict[str, Any] = dict(
            label_kind="regression",
            manifest=str(manifest),
            path_column="id",
            path_template="arrays/{id}.npy",
            label_column="age",
            split_column=None,
            val_fraction=0.1,
            test_fraction=0.1,
            frames=frames,
            size=32,
            mean=[0.5],
            std=[0.25],
            train_clip_sampler=UniformSegmentSampler(frames, random_offset=False),
            eval_clip_sampler=UniformSegmentSampler(frames, random_offset=False),
            batch_size=4,
            num_workers=0,
        )
        options.update(overrides)
        return VideoDataModule(**options)

    return build


@pytest.fixture
def write_arrays() -> Callable[[Path, dict[str, np.ndarray], dict[str, str]], Path]:
    """Save arrays as FOLDER/arrays/<id>.npy and write FOLDER/labels.csv (id, label)."""

    def write(folder: Path, arrays: dict[str, np.ndarray], labels: dict[str, str]) -> Path:
        (folder / "arrays").mkdir(parents=True, exist_ok=True)
        for sample_id, array in arrays.items():
            np.save(folder / "arrays" / f"{sample_id}.npy", array)
        frame = pd.DataFrame({"id": list(labels), "label": list(labels.values())})
        frame.to_csv(folder / "labels.csv", index=False)
        return folder / "labels.csv"

    return write


@pytest.fixture(scope="session")
def grey_array_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """manifest.csv (path, age, split) of 8 grey (10, 40, 40) uint8 .npy arrays and 2 broken ones.

    The broken arrays are the first two training rows, so anything that reads "the first file"
    must pass over them; a user's own data laid out as the README's manifest describes.
    """
    folder = tmp_path_factory.mktemp("grey_arrays")
    (folder / "arrays").mkdir()
    (folder / "arrays" / "broken_0.npy").write_bytes(b"not an array")
    (folder / "arrays" / "broken_1.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    rows = [("arrays/broken_0.npy", 30.0, "train"), ("arrays/broken_1.npy", 50.0, "train")]
    rng = np.random.default_rng(0)
    for index in range(8):
        path = f"arrays/case_{index:02d}.npy"
        np.save(folder / path, rng.integers(0, 256, (10, 40, 40), dtype=np.uint8))
        rows.append((path, 20.0 + 3 * index, "train" if index < 6 else "val"))
    pd.DataFrame(rows, columns=["path", "age", "split"]).to_csv(
        folder / "manifest.csv", index=False
    )
    return folder / "manifest.csv"
