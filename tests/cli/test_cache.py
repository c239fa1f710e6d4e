"""vidlearn-cache through its Hydra config: every video decoded once, then found cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from vidlearn.cli.cache import run_cache
from vidlearn.cli.config import CONF_DIR
from vidlearn.data.cache_fill import FillReport
from vidlearn.errors import ConfigError


def _cache(tmp_path: Path, *overrides: str) -> FillReport:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "cache",
            overrides=[
                f"paths.cache_dir={tmp_path / 'demo'}",
                "data.size=16",
                "progress=false",
                *overrides,
            ],
        )
    return run_cache(cfg)


def test_fill_decodes_every_video_once_in_parallel_then_finds_them_cached(
    demo_videos: Path, tmp_path: Path
) -> None:
    options = (f"data.manifest={demo_videos}", f"data.frame_cache={tmp_path / 'frames'}")
    first = _cache(tmp_path, *options, "workers=2")
    assert (first.videos, first.decoded, first.frames, first.bad) == (30, 30, 30 * 12, {})
    assert first.nbytes == 30 * 12 * 16 * 16 * 3
    assert len(list((tmp_path / "frames").glob("*.frames"))) == 30
    again = _cache(tmp_path, *options, "workers=0")
    assert (again.videos, again.decoded) == (30, 0)


def test_fill_lists_files_that_cannot_be_decoded(demo_videos: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"  # outside the shared demo folder, which other tests list
    broken.write_bytes(b"not a video" * 100)
    manifest = tmp_path / "with_broken.csv"
    rows = demo_videos.read_text().splitlines()
    manifest.write_text("\n".join([*rows, f"{broken},clockwise,train,subject_x,10.0,0"]) + "\n")
    report = _cache(
        tmp_path,
        f"data.manifest={manifest}",
        f"data.root={demo_videos.parent}",
        "data.allow_outside_root=true",
        f"data.frame_cache={tmp_path / 'frames'}",
        "workers=0",
        "splits=[train]",
    )
    assert list(report.bad) == [str(broken)] and "decord cannot open it" in report.bad[str(broken)]


def test_fill_without_a_cache_folder_says_which_key_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.frame_cache is null"):
        _cache(tmp_path)
