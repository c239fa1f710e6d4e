"""Specification of the rotating-dot demo videos (vidlearn/demo/videos.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from vidlearn.demo import demo_is_complete
from vidlearn.demo.videos import (
    CLASSES,
    SPEED_RANGE,
    dot_positions,
    frame_order,
    make_videos,
    plan_videos,
)

TINY = {"num_videos": 12, "frames": 8, "size": 32, "fps": 8}


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("videos")
    make_videos(out, seed=0, **TINY)
    return out


@pytest.fixture(scope="module")
def plan() -> pd.DataFrame:
    """The manifest columns of a full-size 600-video set, drawn without rendering."""
    rows = plan_videos(np.random.Generator(np.random.PCG64(0)), 600)
    return pd.DataFrame([row.__dict__ for row in rows])


def file_digests(out: Path) -> dict[str, str]:
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_manifest_has_the_documented_columns(tiny_videos: Path) -> None:
    manifest = pd.read_csv(tiny_videos / "manifest.csv")
    assert list(manifest.columns) == ["path", "label", "split", "group", "speed", "event"]


def test_every_manifest_path_is_an_mp4_under_out(tiny_videos: Path) -> None:
    manifest = pd.read_csv(tiny_videos / "manifest.csv")
    assert all((tiny_videos / path).suffix == ".mp4" for path in manifest.path)
    assert all((tiny_videos / path).is_file() for path in manifest.path)


def test_videos_decode_to_the_requested_frames_and_size(tiny_videos: Path) -> None:
    path = tiny_videos / pd.read_csv(tiny_videos / "manifest.csv").path[0]
    assert decode(path).shape == (8, 32, 32, 3)


def test_same_seed_writes_identical_files(tiny_videos: Path, tmp_path: Path) -> None:
    make_videos(tmp_path, seed=0, **TINY)
    assert file_digests(tmp_path) == file_digests(tiny_videos)


def test_another_seed_writes_other_frames(tiny_videos: Path, tmp_path: Path) -> None:
    make_videos(tmp_path, seed=1, **TINY)
    first = decode(tiny_videos / pd.read_csv(tiny_videos / "manifest.csv").path[0])
    other = decode(tmp_path / pd.read_csv(tmp_path / "manifest.csv").path[0])
    assert not np.array_equal(first, other)


def test_marker_records_the_arguments(tiny_videos: Path) -> None:
    assert demo_is_complete(tiny_videos, make_videos, seed=0, **TINY)
    assert not demo_is_complete(tiny_videos, make_videos, seed=1, **TINY)


def test_odd_size_is_rejected_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        make_videos(tmp_path, num_videos=1, size=33)


def test_class_shares_are_about_50_32_18(plan: pd.DataFrame) -> None:
    assert plan.label.value_counts()[list(CLASSES)].tolist() == [300, 192, 108]


def test_one_video_in_ten_has_the_event(plan: pd.DataFrame) -> None:
    assert plan.event.sum() == 60


def test_speeds_lie_in_the_documented_range(plan: pd.DataFrame) -> None:
    assert plan.speed.between(*SPEED_RANGE).all()


def test_subjects_have_a_few_videos(plan: pd.DataFrame) -> None:
    sizes = plan.group.value_counts()
    assert sizes.max() <= 5 and (sizes >= 2).mean() > 0.99


def test_no_subject_straddles_two_splits(plan: pd.DataFrame) -> None:
    assert plan.groupby("group").split.nunique().max() == 1


def test_split_sizes_are_about_70_15_15(plan: pd.DataFrame) -> None:
    shares = plan.split.value_counts(normalize=True)
    assert shares[["train", "val", "test"]].tolist() == pytest.approx([0.70, 0.15, 0.15], abs=0.02)


def test_each_split_keeps_the_overall_label_mix(plan: pd.DataFrame) -> None:
    overall = plan.label.value_counts(normalize=True)
    for split, rows in plan.groupby("split"):
        mix = rows.label.value_counts(normalize=True)[overall.index]
        assert mix.to_numpy() == pytest.approx(overall.to_numpy(), abs=0.03), split


def circle_positions(label: str) -> np.ndarray:
    order = frame_order(label, 10, np.random.default_rng(0))
    return dot_positions(order, centre=(30.0, 34.0), radius=12.0, start_angle=40.0, speed=20.0)


def test_anticlockwise_shows_the_clockwise_positions_in_reverse() -> None:
    np.testing.assert_allclose(
        circle_positions("anticlockwise"), circle_positions("clockwise")[::-1]
    )


def test_erratic_shows_the_same_positions_in_a_non_monotonic_order() -> None:
    erratic, clockwise = circle_positions("erratic"), circle_positions("clockwise")
    assert sorted(map(tuple, erratic.round(6))) == sorted(map(tuple, clockwise.round(6)))
    assert not np.allclose(erratic, clockwise) and not np.allclose(erratic, clockwise[::-1])


def test_clockwise_turns_clockwise_on_screen() -> None:
    y, x = (circle_positions("clockwise") - (30.0, 34.0)).T
    # With y pointing down, a clockwise turn on screen has a positive x*y' - y*x' cross product.
    assert np.all(x[:-1] * y[1:] - y[:-1] * x[1:] > 0)


def test_unknown_label_is_rejected_with_the_class_list() -> None:
    with pytest.raises(ValueError, match="clockwise"):
        frame_order("sideways", 8, np.random.default_rng(0))
