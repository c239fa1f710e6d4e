"""vidlearn-predict: one row per file with top-k classes, one row per window with times."""

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.predict import predict


def _predict(*overrides: str) -> list[Path]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return predict(compose("predict", overrides=["progress=false", "device=cpu", *overrides]))


def test_a_folder_gives_top_k_per_video_and_timed_windows(
    video_checkpoint: Path, demo_videos: Path, tmp_path: Path
) -> None:
    files, windows = _predict(
        f"ckpt={video_checkpoint}",
        f"input={demo_videos.parent}",
        f"out={tmp_path / 'p.csv'}",
        "top_k=2",
        "batch_size=5",
    )
    table, window_table = pd.read_csv(files), pd.read_csv(windows)
    assert windows.name == "p_windows.csv"
    assert len(table) == 30 and table["error"].isna().all()
    assert (table["probability_1"] >= table["probability_2"]).all() and "class_3" not in table
    assert set(table["class_1"]) <= {"anticlockwise", "clockwise", "erratic"}
    # demo videos: 12 frames; windows of 6 frames touch: [0, 6) and [6, 12) frames
    fps = (window_table["end_s"] - window_table["start_s"]).iloc[0] / 6
    assert window_table.groupby("path").size().eq(2).all()
    assert window_table["start_s"].div(fps).round().isin([0, 6]).all()
    first = window_table[window_table["path"] == table["path"][0]]
    assert first[table["class_1"][0]].mean() == pytest.approx(table["probability_1"][0], abs=1e-6)


def test_an_unreadable_file_gets_a_row_with_its_error(
    video_checkpoint: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    (files, _) = _predict(
        f"ckpt={video_checkpoint}", f"input={broken}", f"out={tmp_path / 'p.csv'}"
    )
    table = pd.read_csv(files)
    assert table["windows"].tolist() == [0] and str(broken) in table["error"][0]


def test_frame_cache_gives_the_same_windows_and_fills_one_entry_per_video(
    video_checkpoint: Path, demo_videos: Path, tmp_path: Path
) -> None:
    common = (f"ckpt={video_checkpoint}", f"input={demo_videos.parent}")
    (_, plain) = _predict(*common, f"out={tmp_path / 'plain.csv'}")
    (_, cached) = _predict(
        *common, f"out={tmp_path / 'cached.csv'}", f"frame_cache={tmp_path / 'frames'}"
    )
    pd.testing.assert_frame_equal(pd.read_csv(plain), pd.read_csv(cached))
    assert len(list((tmp_path / "frames").glob("*.frames"))) == 30
