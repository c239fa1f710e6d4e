"""vidlearn-stats through its Hydra config: the report on the demo images and videos."""

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.stats import run_stats
from vidlearn.reports.dataset import ALL, DatasetReport


def _stats(tmp_path: Path, *overrides: str) -> DatasetReport:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "stats",
            overrides=[
                f"out={tmp_path / 'stats'}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                "progress=false",
                *overrides,
            ],
        )
    return run_stats(cfg)


@pytest.fixture
def posture(tmp_path: Path, demo_images: Path) -> DatasetReport:
    return _stats(
        tmp_path,
        "data=image_csv",
        f"data.manifest={demo_images}",
        "data.label_column=primary_posture",
        'data.filter="num_people == 1"',
        "stats.group_by=[tranche]",
        "sampler=balanced",
    )


def test_posture_report_counts_tranches_and_lists_removed_rows(
    posture: DatasetReport, demo_images: Path, tmp_path: Path
) -> None:
    manifest = pd.read_csv(demo_images)
    kept = manifest.query("num_people == 1").dropna(subset=["primary_posture"])
    expected = pd.crosstab(kept["primary_posture"], kept["tranche"].astype(str))
    counts = posture.counts["tranche"].drop(index=ALL, columns=ALL)
    assert counts.to_dict() == expected.to_dict()
    out = tmp_path / "stats"
    text = (out / "report.md").read_text()
    assert f"{len(manifest) - len(kept)} removed" in text
    for line in posture.dropped["line"]:
        assert f"| {line} | " in text
    assert set(posture.dropped["reason"]) == {"filter: num_people == 1", "blank label"}
    for name in ("counts_split.png", "counts_tranche.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.height > 0


def test_balanced_sampler_table_shows_equal_expected_frequencies(
    posture: DatasetReport, tmp_path: Path
) -> None:
    assert posture.sampler_name == "BalancedSampler"
    assert posture.sampler["sampled"].to_numpy() == pytest.approx(1 / 3)
    assert posture.sampler["natural"].nunique() > 1  # the demo classes are unbalanced
    text = (tmp_path / "stats" / "report.md").read_text()
    for name, row in posture.sampler.iterrows():
        assert f"| {name} | {int(row['count'])} | {row['natural']:.4f} | 0.3333 |" in text


def test_video_report_probes_each_file(tmp_path: Path, demo_videos: Path) -> None:
    report = _stats(tmp_path, f"data.manifest={demo_videos}", "data.backend=pyav")
    out = tmp_path / "stats"
    with Image.open(out / "videos.png") as image:
        assert image.format == "PNG"
    text = (out / "report.md").read_text()
    assert "## videos: resolution" in text and "| 32x32 | 30 |" in text
    assert "## unreadable videos (0)" in text
    # The training probe index (data.probe_index) serves the report: no second cache.
    assert len(report.probes) == 30 and (tmp_path / "cache" / "probes.sqlite").is_file()


def test_unknown_group_column_fails_with_the_usable_columns(
    tmp_path: Path, demo_videos: Path
) -> None:
    with pytest.raises(ValueError, match=r"stats.group_by: no column 'tranche'.*'group'"):
        _stats(tmp_path, f"data.manifest={demo_videos}", "stats.group_by=[tranche]")
