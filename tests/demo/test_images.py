"""Specification of the stick-figure posture images (vidlearn/demo/images.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vidlearn.demo.completion import demo_is_complete
from vidlearn.demo.images import POSTURES, make_images, plan_images

TINY = {"num_images": 24, "size": 48}
COLUMNS = ["path", "primary_posture", "num_people", "occluded", "tranche"]


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("images")
    make_images(out, seed=0, **TINY)
    return out


@pytest.fixture(scope="module")
def plans() -> list:
    """The rows and scenes of a full-size 900-image set, drawn without rendering."""
    return plan_images(np.random.Generator(np.random.PCG64(0)), 900)


@pytest.fixture(scope="module")
def plan(plans: list) -> pd.DataFrame:
    return pd.DataFrame([item.row.__dict__ for item in plans])


def read_manifest(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


def file_digests(out: Path) -> dict[str, str]:
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def test_manifest_has_the_export_columns_and_no_split(tiny_images: Path) -> None:
    assert list(read_manifest(tiny_images / "manifest.csv").columns) == COLUMNS


def test_images_decode_as_rgb_of_the_requested_size(tiny_images: Path) -> None:
    for path in read_manifest(tiny_images / "manifest.csv").path:
        with Image.open(tiny_images / path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (48, 48))


def test_images_live_in_their_tranche_folder(tiny_images: Path) -> None:
    manifest = read_manifest(tiny_images / "manifest.csv")
    for path, tranche in zip(manifest.path, manifest.tranche, strict=True):
        assert Path(path).parent == Path("images") / f"tranche_{tranche}"


def test_tranche_label_files_together_make_the_manifest(tiny_images: Path) -> None:
    parts = [read_manifest(tiny_images / "labels" / f"tranche_{t}.csv") for t in (1, 2, 3)]
    assert pd.concat(parts, ignore_index=True).equals(read_manifest(tiny_images / "manifest.csv"))


def test_same_seed_writes_identical_files(tiny_images: Path, tmp_path: Path) -> None:
    make_images(tmp_path, seed=0, **TINY)
    assert file_digests(tmp_path) == file_digests(tiny_images)


def test_another_seed_writes_other_images(tiny_images: Path, tmp_path: Path) -> None:
    make_images(tmp_path, seed=1, **TINY)
    path = read_manifest(tiny_images / "manifest.csv").path[0]
    assert (tmp_path / path).read_bytes() != (tiny_images / path).read_bytes()


def test_marker_records_the_arguments(tiny_images: Path) -> None:
    assert demo_is_complete(tiny_images, make_images, seed=0, **TINY)
    assert not demo_is_complete(tiny_images, make_images, seed=0, num_images=25, size=48)


def test_tiny_size_is_rejected_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size >= 32"):
        make_images(tmp_path, num_images=1, size=16)


def test_postures_drawn_are_45_35_20(plans: list) -> None:
    primary = pd.Series([item.postures[0] for item in plans]).value_counts()
    assert primary[list(POSTURES)].tolist() == [405, 315, 180]


def test_three_percent_of_rows_have_a_blank_posture(plan: pd.DataFrame) -> None:
    assert (plan.primary_posture == "").sum() == 27


def test_labelled_rows_name_the_primary_figure(plans: list) -> None:
    labelled = [item for item in plans if item.row.primary_posture]
    assert all(item.row.primary_posture == item.postures[0] for item in labelled)


def test_eight_percent_of_images_show_several_people(plan: pd.DataFrame) -> None:
    assert (plan.num_people > 1).sum() == 72 and plan.num_people.max() <= 3


def test_num_people_is_the_number_of_figures_drawn(plans: list) -> None:
    assert all(len(item.postures) == item.row.num_people for item in plans)


def test_occluded_is_mostly_no_some_yes_and_five_percent_unknown(plan: pd.DataFrame) -> None:
    assert plan.occluded.value_counts()[["no", "yes", "unknown"]].tolist() == [720, 135, 45]


def test_rows_marked_occluded_are_drawn_occluded(plans: list) -> None:
    flags = {(item.row.occluded, item.occluded) for item in plans}
    assert ("yes", False) not in flags and ("no", True) not in flags


def test_tranches_are_contiguous_blocks_of_40_35_25(plan: pd.DataFrame) -> None:
    assert plan.tranche.tolist() == [1] * 360 + [2] * 315 + [3] * 225
