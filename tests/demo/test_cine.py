"""Specification of the cardiac-cine-like arrays (vidlearn/demo/cine.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidlearn.demo.cine import assign_folds, contraction, make_cine, render_cine
from vidlearn.demo.completion import demo_is_complete

TINY = {"num_samples": 10, "frames": 6, "size": 32, "folds": 5}


@pytest.fixture(scope="module")
def tiny_cine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cine")
    make_cine(out, seed=0, **TINY)
    return out


def file_digests(out: Path) -> dict[str, str]:
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def folds_of(out: Path, part: str) -> list[pd.DataFrame]:
    return [pd.read_csv(out / "folds" / f"fold_{k}_{part}.csv") for k in range(TINY["folds"])]


def bright_area(frames: np.ndarray) -> np.ndarray:
    """Pixels per frame brighter than muscle: the blood pool's area."""
    return (frames > 0.6 * 255).sum(axis=(1, 2))


def test_labels_have_id_age_sex(tiny_cine: Path) -> None:
    labels = pd.read_csv(tiny_cine / "labels.csv")
    assert list(labels.columns) == ["id", "age", "sex"]
    assert labels.age.between(20, 80).all() and labels.sex.sum() == 5


def test_every_id_has_a_uint8_array_of_frames_by_size(tiny_cine: Path) -> None:
    for sample_id in pd.read_csv(tiny_cine / "labels.csv").id:
        array = np.load(tiny_cine / "arrays" / f"{sample_id}.npy")
        assert (array.dtype, array.shape) == (np.uint8, (6, 32, 32))


def test_validation_folds_are_disjoint_and_cover_every_id(tiny_cine: Path) -> None:
    ids = [sample_id for fold in folds_of(tiny_cine, "val") for sample_id in fold.id]
    assert sorted(ids) == sorted(pd.read_csv(tiny_cine / "labels.csv").id)


def test_each_training_fold_is_everything_but_its_validation_fold(tiny_cine: Path) -> None:
    every = set(pd.read_csv(tiny_cine / "labels.csv").id)
    for train, val in zip(folds_of(tiny_cine, "train"), folds_of(tiny_cine, "val"), strict=True):
        assert set(train.id) == every - set(val.id)


def test_folds_are_stratified_by_sex() -> None:
    sexes = np.repeat([0, 1], [97, 103])
    fold_of = assign_folds(np.random.default_rng(0), sexes, 5)
    per_fold = np.array([[np.sum((fold_of == k) & (sexes == s)) for s in (0, 1)] for k in range(5)])
    assert np.ptp(per_fold, axis=0).max() <= 1 and np.ptp(per_fold.sum(axis=1)) <= 1


def test_same_seed_writes_identical_files(tiny_cine: Path, tmp_path: Path) -> None:
    make_cine(tmp_path, seed=0, **TINY)
    assert file_digests(tmp_path) == file_digests(tiny_cine)


def test_another_seed_writes_other_arrays(tiny_cine: Path, tmp_path: Path) -> None:
    make_cine(tmp_path, seed=1, **TINY)
    other = np.load(tmp_path / "arrays" / "case_0000.npy")
    assert not np.array_equal(other, np.load(tiny_cine / "arrays" / "case_0000.npy"))


def test_marker_records_the_arguments(tiny_cine: Path) -> None:
    assert demo_is_complete(tiny_cine, make_cine, seed=0, **TINY)
    assert not demo_is_complete(tiny_cine, make_cine, seed=0)


def test_more_folds_than_samples_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_samples >= folds"):
        make_cine(tmp_path, num_samples=3, folds=5)


def test_beat_starts_relaxed_and_fully_contracts() -> None:
    squeeze = contraction(25, systole=0.3)
    assert squeeze[0] == 0.0 and squeeze.max() == pytest.approx(1.0, abs=0.02)


def test_older_hearts_contract_less() -> None:
    def pulse(age: float) -> float:
        area = bright_area(render_cine(np.random.default_rng(0), age, 0, 25, 96))
        return 1 - area.min() / area.max()

    assert pulse(25.0) > pulse(75.0) + 0.2


def test_sex_one_has_the_larger_relaxed_ventricle() -> None:
    def relaxed(sex: int) -> int:
        return int(bright_area(render_cine(np.random.default_rng(0), 50.0, sex, 4, 96))[0])

    assert relaxed(1) > relaxed(0)
