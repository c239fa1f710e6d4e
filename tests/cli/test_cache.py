"""vidlearn-cache through its Hydra config: every video decoded once, then found cached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import ScriptRun
from counter_videos import counter_frames, write_video
from hydra import compose, initialize_config_dir

from vidlearn.cli.cache import BAD_TITLE, run_cache
from vidlearn.cli.config import CONF_DIR
from vidlearn.data.cache_fill import FillReport, fill_videos
from vidlearn.data.frame_cache import FrameCache
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


@pytest.fixture
def wide_set(tmp_path: Path) -> Path:
    """Manifest of four 32x32 counter clips and one 48 pixels wide (decord opens it but cannot
    copy its frames; PyAV reads it), all in train."""
    folder = tmp_path / "clips"
    folder.mkdir()
    rows = []
    for i in range(4):
        write_video(folder / f"clip_{i}.mp4", counter_frames(12))
        rows.append(f"clip_{i}.mp4,{'ab'[i % 2]},train")
    write_video(folder / "wide_48.mp4", counter_frames(12, 32, 48))
    manifest = folder / "manifest.csv"
    manifest.write_text("path,label,split\n" + "\n".join([*rows, "wide_48.mp4,a,train"]) + "\n")
    return manifest


@pytest.mark.usefixtures("decord_then_pyav")
def test_a_video_decord_opens_but_cannot_read_is_cached_with_pyav(
    wide_set: Path, tmp_path: Path
) -> None:
    report = _cache(
        tmp_path,
        f"data.manifest={wide_set}",
        f"data.frame_cache={tmp_path / 'frames'}",
        "data.backend=auto",
        "workers=0",
    )
    assert (report.videos, report.decoded, report.bad) == (5, 5, {})
    assert report.backends == {"decord": 4, "pyav": 1}
    cache = FrameCache(tmp_path / "frames", 16, "auto")
    assert cache.entry_path(wide_set.parent / "wide_48.mp4").is_file()


def test_files_the_probe_refuses_are_listed_as_bad(wide_set: Path, tmp_path: Path) -> None:
    empty = wide_set.parent / "empty.mp4"
    empty.write_bytes(b"")
    with wide_set.open("a") as manifest:
        manifest.write("empty.mp4,b,train\n")
    report = _cache(
        tmp_path, f"data.manifest={wide_set}", f"data.frame_cache={tmp_path / 'frames'}"
    )
    assert report.bad == {str(empty): "file is empty (0 bytes); re-export it or remove its row"}
    assert report.videos == 5


def test_bad_files_table_shows_whole_paths_relative_to_the_manifest_on_a_narrow_terminal(
    wide_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    relative = "takes/session_01/camera_left/a_rather_long_name_of_a_take.mp4"
    broken = wide_set.parent / relative
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a video" * 100)
    with wide_set.open("a") as manifest:
        manifest.write(f"{relative},b,train\n")
    monkeypatch.setenv("COLUMNS", "40")
    _cache(tmp_path, f"data.manifest={wide_set}", f"data.frame_cache={tmp_path / 'frames'}")
    printed = capsys.readouterr().out
    listing = printed[printed.index(BAD_TITLE) :]
    first_column = "".join(
        line.split("│")[1].strip() for line in listing.splitlines() if line.count("│") > 2
    )
    assert relative in first_column


def test_a_user_mistake_ends_the_console_script_cleanly(
    console_script: Callable[..., ScriptRun], tmp_path: Path
) -> None:
    result = console_script(
        "vidlearn-cache",
        "data.manifest=nope.csv",
        cwd=tmp_path,
        VIDLEARN_CACHE=str(tmp_path / "cache"),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Error executing job" not in result.stderr
    assert "data.frame_cache" in result.stderr


def test_arrays_are_counted_as_arrays_not_under_the_probed_video_backend(tmp_path: Path) -> None:
    """The probe names a backend for every row (decord under auto), but an array is memory-mapped,
    never decoded: the backends column must not say decord read it."""
    array = tmp_path / "beat.npy"
    np.save(array, np.zeros((4, 8, 8), np.float32))
    report = fill_videos(FrameCache(tmp_path / "frames", 16), {str(array): "decord"}, workers=0)
    assert report.backends == {"array": 1}
