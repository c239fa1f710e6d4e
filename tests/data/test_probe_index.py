"""ProbeCache: a probe outcome (facts or failure) is remembered per path, size, mtime and backend."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from counter_videos import counter_frames, write_video

from vidlearn.data import probe, video
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.video import DecodeError, VideoInfo


@pytest.fixture
def probe_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths that probe_video really opened during the test."""
    calls: list[str] = []
    real_probe = video.probe_video

    def probe(path: str, backend: str = "decord") -> VideoInfo:
        calls.append(str(path))
        return real_probe(path, backend)

    monkeypatch.setattr(video, "probe_video", probe)
    return calls


def test_second_probe_does_not_open_the_file(
    counter_video: Path, tmp_path: Path, probe_calls: list[str]
) -> None:
    first = ProbeCache(tmp_path / "probes.sqlite").probe(counter_video)
    second = ProbeCache(tmp_path / "probes.sqlite").probe(counter_video)  # as a later run would
    assert first == second and len(probe_calls) == 1


def test_touched_file_is_probed_again(tmp_path: Path, probe_calls: list[str]) -> None:
    path = tmp_path / "clip.npy"
    np.save(path, np.zeros((5, 2, 2), dtype=np.uint8))
    cache = ProbeCache(tmp_path / "probes.sqlite")
    cache.probe(path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    cache.probe(path)
    assert len(probe_calls) == 2


def test_a_failure_is_remembered_with_its_reason(
    broken_files: dict[str, Path], tmp_path: Path, probe_calls: list[str]
) -> None:
    cache = ProbeCache(tmp_path / "probes.sqlite")
    path = broken_files["random_bytes"]
    for _ in range(2):
        with pytest.raises(DecodeError, match=f"^{path}: decord cannot open it"):
            cache.probe(path)
    assert probe_calls == [str(path)]


def test_outcomes_are_kept_per_backend(counter_video: Path, tmp_path: Path) -> None:
    cache = ProbeCache(tmp_path / "probes.sqlite")
    cache.store({str(counter_video): "decord cannot copy its frames"}, "decord")
    assert cache.lookup([str(counter_video)], "decord") == {
        str(counter_video): "decord cannot copy its frames"
    }
    assert cache.lookup([str(counter_video)], "pyav") == {}


def test_failures_stored_by_an_older_index_are_forgotten_once(
    counter_video: Path, tmp_path: Path
) -> None:
    # Before version 1, a backend library that could not load was stored as every file's failure,
    # so installing it changed nothing until the index was deleted.
    path = tmp_path / "probes.sqlite"
    ProbeCache(path).store({str(counter_video): "backend=torchcodec needs `pip install`"}, "decord")
    ProbeCache(path).store({str(counter_video): video.probe_video(counter_video)}, "pyav")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 0")
    reopened = ProbeCache(path)
    assert reopened.lookup([str(counter_video)], "decord") == {}
    assert isinstance(reopened.lookup([str(counter_video)], "pyav")[str(counter_video)], VideoInfo)
    reopened.store({str(counter_video): "truncated"}, "decord")
    assert ProbeCache(path).lookup([str(counter_video)], "decord") == {
        str(counter_video): "truncated"
    }


@pytest.mark.torchcodec
def test_an_index_filled_while_auto_meant_decord_gives_torchcodec_once_it_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyed by backend: decord's stored outcome is not taken for torchcodec's, so once
    torchcodec loads, an auto run probes the file with it and reads it with torchcodec."""
    path = str(write_video(tmp_path / "clip.mp4", counter_frames(12)))
    index = ProbeCache(tmp_path / "probes.sqlite")
    with monkeypatch.context() as without:
        without.setattr(probe, "auto_backends", lambda: ("decord", "pyav"))  # torchcodec absent
        assert probe.probe_files([path], "auto", index)[0][path][0] == "decord"
    found, probed = probe.probe_files([path], "auto", index)
    assert found[path][0] == "torchcodec" and probed == 1
