"""The dataset report's tables agree with the manifest they describe."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vidlearn.data.datamodules import ImageDataModule, VideoDataModule
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.samplers import BalancedSampler, ShuffleSampler
from vidlearn.demo import make_videos
from vidlearn.errors import ConfigError
from vidlearn.reports.dataset import (
    ALL,
    class_counts,
    describe_dataset,
    dropped_rows,
    probe_videos,
    sampler_frequencies,
    target_summary,
    write_dataset_report,
)

FILTER = "num_people == 1"


@pytest.fixture(scope="module")
def posture(demo_images: Path) -> ImageDataModule:
    datamodule = ImageDataModule(
        label_kind="multiclass",
        manifest=str(demo_images),
        label_column="primary_posture",
        filter=FILTER,
    )
    datamodule.setup("fit")
    return datamodule


def _kept_rows(manifest: Path) -> pd.DataFrame:
    """The manifest rows a filter and the blank-label rule keep, computed independently."""
    rows = pd.read_csv(manifest).query(FILTER)
    return rows[rows["primary_posture"].notna()]


def test_class_counts_per_tranche_equal_a_crosstab_of_the_manifest(
    posture: ImageDataModule, demo_images: Path
) -> None:
    kept = _kept_rows(demo_images)
    expected = pd.crosstab(kept["primary_posture"], kept["tranche"].astype(str))  # read as text
    counts = class_counts(posture.table, "tranche", posture.classes)
    table = counts.drop(index=ALL, columns=ALL)
    assert table.index.tolist() == sorted(expected.index)
    assert (table.to_numpy() == expected.loc[table.index, table.columns].to_numpy()).all()
    assert counts.loc[ALL, ALL] == len(kept)


def test_split_counts_list_splits_in_training_order(posture: ImageDataModule) -> None:
    counts = class_counts(posture.table, "split")
    assert counts.columns.tolist() == ["train", "val", "test", ALL]
    assert counts.loc[ALL].drop(ALL).to_dict() == posture.table["split"].value_counts().to_dict()


def test_blank_group_cells_are_counted_not_lost() -> None:
    table = pd.DataFrame({"label": ["a", "a", "b"], "site": ["x", None, "x"]})
    counts = class_counts(table, "site")
    assert counts.loc["a", "(blank)"] == 1 and counts.loc[ALL, ALL] == 3


def test_unknown_group_column_names_the_usable_columns(posture: ImageDataModule) -> None:
    with pytest.raises(ConfigError, match=r"no column 'site'.*tranche"):
        class_counts(posture.table, "site")


def test_dropped_rows_carry_line_label_and_reason(
    posture: ImageDataModule, demo_images: Path
) -> None:
    manifest = pd.read_csv(demo_images)
    dropped = dropped_rows(posture.rows.dropped, ["path", "primary_posture"])
    assert dropped.columns.tolist() == ["line", "path", "primary_posture", "reason"]
    filtered = manifest.index[manifest["num_people"] != 1] + 2  # CSV line: header is line 1
    blank = manifest.index[manifest["primary_posture"].isna()] + 2
    by_reason = dropped.groupby("reason")["line"].apply(set).to_dict()
    assert by_reason[f"filter: {FILTER}"] == set(filtered)
    assert by_reason["blank label"] == set(blank) - set(filtered)
    assert dropped["line"].is_monotonic_increasing


def test_balanced_sampler_expects_equal_class_frequencies(posture: ImageDataModule) -> None:
    targets = posture.split_rows("train")["target"].to_numpy()
    frequencies = sampler_frequencies(BalancedSampler(targets), targets, posture.classes)
    assert frequencies.index.tolist() == posture.classes
    assert frequencies["sampled"].to_numpy() == pytest.approx(1 / len(posture.classes))
    assert frequencies["count"].tolist() == np.bincount(targets).tolist()


def test_unweighted_sampler_expects_natural_frequencies(posture: ImageDataModule) -> None:
    targets = posture.split_rows("train")["target"].to_numpy()
    frequencies = sampler_frequencies(ShuffleSampler(targets), targets, posture.classes)
    assert frequencies["sampled"].to_numpy() == pytest.approx(frequencies["natural"].to_numpy())


def test_regression_summary_per_group() -> None:
    table = pd.DataFrame({"split": ["train", "train", "val"], "target": [1.0, 3.0, 5.0]})
    summary = target_summary(table, "split")
    assert summary.loc["train", "mean"] == 2.0 and summary.loc[ALL, "count"] == 3


def test_report_files_are_written(posture: ImageDataModule, tmp_path: Path) -> None:
    report = describe_dataset(
        posture, BalancedSampler, group_by=["tranche"], shown_columns=["path", "primary_posture"]
    )
    target = write_dataset_report(report, tmp_path)
    text = target.read_text()
    assert "## rows per class and tranche" in text and "filter: num_people == 1" in text
    for name in ("counts_split.png", "counts_tranche.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 0
        assert f"]({name})" in text
    assert len(pd.read_csv(tmp_path / "dropped.csv")) == len(posture.rows.dropped)


def test_video_probes_and_unreadable_files(tmp_path: Path) -> None:
    manifest = make_videos(tmp_path / "videos", seed=0, num_videos=6, frames=8, size=32)
    broken = pd.read_csv(manifest)["path"].iloc[0]
    (manifest.parent / broken).write_bytes(b"not a video")
    datamodule = VideoDataModule(
        label_kind="multiclass",
        manifest=str(manifest),
        train_clip_sampler=lambda num_frames, fps, rng: [np.arange(4)],
        eval_clip_sampler=lambda num_frames, fps, rng: [np.arange(4)],
        probe=False,  # keep the broken row for the report's own probe
    )
    datamodule.setup("fit")
    probes, unreadable = probe_videos(datamodule.table, ProbeCache(tmp_path / "p.sqlite"), "pyav")
    assert unreadable["path"].tolist() == [str(manifest.parent / broken)]
    assert "not a video" not in unreadable["error"].iloc[0] and unreadable["line"].tolist() == [2]
    assert len(probes) == 5 and set(probes["resolution"]) == {"32x32"}
    assert set(probes["codec"]) == {"h264"}


def test_rows_the_datamodule_probe_dropped_are_reported_unreadable(tmp_path: Path) -> None:
    manifest = make_videos(tmp_path / "videos", seed=0, num_videos=6, frames=8, size=32)
    broken = manifest.parent / pd.read_csv(manifest)["path"].iloc[0]
    broken.write_bytes(b"not a video")
    datamodule = VideoDataModule(
        label_kind="multiclass",
        manifest=str(manifest),
        train_clip_sampler=lambda num_frames, fps, rng: [np.arange(4)],
        eval_clip_sampler=lambda num_frames, fps, rng: [np.arange(4)],
        max_bad_fraction=0.5,
    )
    datamodule.setup("fit")
    report = describe_dataset(datamodule, None, probe_cache=ProbeCache(tmp_path / "p.sqlite"))
    assert report.unreadable["path"].tolist() == [str(broken)]
    assert report.unreadable["line"].tolist() == [2] and len(report.probes) == 5


def test_long_listings_are_cut_and_point_to_the_csv(
    posture: ImageDataModule, tmp_path: Path
) -> None:
    report = describe_dataset(posture, None, shown_columns=["path"])
    text = write_dataset_report(report, tmp_path, limit=2).read_text()
    assert f"## removed rows: first 2 of {len(report.dropped)}, all in dropped.csv" in text
    listed = [line for line in text.splitlines() if "images/tranche_" in line]
    assert len(listed) == 2
    assert report.sampler_name == "ShuffleSampler"
