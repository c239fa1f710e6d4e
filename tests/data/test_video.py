"""open_video / probe_video / ProbeCache: what each backend returns and how each failure reads."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vidlearn.data import video
from vidlearn.data.video import DecodeError, ProbeCache, VideoInfo, open_video, probe_video

BACKENDS = ["decord", "pyav"]
FrameIndices = Callable[[np.ndarray], list[int]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_reports_header_facts(counter_video: Path, backend: str) -> None:
    reader = open_video(counter_video, backend)
    assert (reader.num_frames, reader.fps, reader.height, reader.width) == (40, 10.0, 32, 32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_returns_uint8_rgb_frames_in_requested_order(
    counter_video: Path, backend: str, frame_indices: FrameIndices
) -> None:
    frames = open_video(counter_video, backend).read([5, 2, 2, 7])
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    assert frame_indices(frames) == [5, 2, 2, 7]


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_after_seek_returns_exact_frames(
    counter_video: Path, backend: str, frame_indices: FrameIndices
) -> None:
    # 21..39 lies past the first second, so PyAV seeks to the keyframe at 16 and counts from there.
    wanted = [21, 22, 30, 39]
    assert frame_indices(open_video(counter_video, backend).read(wanted)) == wanted


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_of_far_apart_frames_returns_exact_frames(
    counter_video: Path, backend: str, frame_indices: FrameIndices
) -> None:
    # 3 and 36 are more than two seconds apart, so PyAV decodes them in two runs with a seek between.
    assert frame_indices(open_video(counter_video, backend).read([36, 3, 4])) == [36, 3, 4]


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_rejects_index_out_of_range(counter_video: Path, backend: str) -> None:
    with pytest.raises(
        DecodeError, match=rf"{counter_video}: frame indices \[40\] are outside \[0, 40\)"
    ):
        open_video(counter_video, backend).read([3, 40])


def test_pyav_repeats_last_decodable_frame_of_truncated_file(
    truncated_video: Path, frame_indices: FrameIndices, caplog: pytest.LogCaptureFixture
) -> None:
    reader = open_video(truncated_video, "pyav")
    with caplog.at_level(logging.WARNING):
        frames = reader.read([57, 58, reader.num_frames - 1])
    assert frame_indices(frames) == [57, 58, 58]
    assert "cannot be decoded" in caplog.text


def test_decord_names_truncated_file_and_suggests_pyav(truncated_video: Path) -> None:
    with pytest.raises(DecodeError, match=rf"{truncated_video}: decord .* use backend=pyav"):
        open_video(truncated_video, "decord").read([59])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "file not found"),
        ("empty", "file is empty"),
        ("random_bytes", "(decord cannot open it|not a readable video)"),
        ("text_as_avi", "(decord cannot open it|not a readable video)"),
        ("audio_only", "(has no video stream|decord finds no video stream)"),
        ("corrupt_npy", "not a readable NumPy array"),
    ],
)
def test_broken_file_raises_decode_error_naming_it(
    broken_files: dict[str, Path], backend: str, kind: str, reason: str
) -> None:
    path = broken_files[kind]
    with pytest.raises(DecodeError, match=rf"^{path}: {reason}"):
        open_video(path, backend).read([0])


def test_unknown_backend_is_a_config_error(counter_video: Path) -> None:
    with pytest.raises(ValueError, match="use one of decord, pyav, torchcodec"):
        open_video(counter_video, "opencv")


@pytest.mark.skipif(
    importlib.util.find_spec("torchcodec") is not None, reason="torchcodec is installed"
)
def test_torchcodec_missing_says_how_to_install(counter_video: Path) -> None:
    with pytest.raises(DecodeError, match="pip install torchcodec.*apt-get install ffmpeg"):
        open_video(counter_video, "torchcodec")


def test_grayscale_array_gains_channel_axis(tmp_path: Path) -> None:
    path = tmp_path / "gray.npy"
    np.save(path, np.arange(4 * 3 * 2, dtype=np.uint8).reshape(4, 3, 2))
    reader = open_video(path, "decord")
    frames = reader.read([3, 0])
    assert (reader.num_frames, reader.height, reader.width) == (4, 3, 2)
    assert frames.shape == (2, 3, 2, 1) and frames.dtype == np.uint8
    assert frames[1, :, :, 0].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_float_array_is_read_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "mri.npy"
    np.save(path, np.full((3, 4, 4, 2), 1234.5, dtype=np.float64))
    frames = open_video(path).read([1])
    assert frames.dtype == np.float32 and frames.shape == (1, 4, 4, 2) and frames.max() == 1234.5


def test_npy_is_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "clip.npy"
    np.save(path, np.zeros((5, 2, 2), dtype=np.uint8))
    assert isinstance(open_video(path).array.base, np.memmap)


def test_npz_with_one_array_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "cine.npz"
    np.savez(path, anything=np.ones((6, 2, 2), dtype=np.uint8))
    assert open_video(path).read([5]).shape == (1, 2, 2, 1)


def test_npz_with_several_arrays_reads_array_key(tmp_path: Path) -> None:
    path = tmp_path / "cine.npz"
    np.savez(path, frames=np.ones((6, 2, 2), dtype=np.uint8), mask=np.zeros((2, 2)))
    assert open_video(path, array_key="frames").num_frames == 6


def test_npz_without_array_key_names_the_stored_arrays(tmp_path: Path) -> None:
    path = tmp_path / "cine.npz"
    np.savez(path, image=np.ones((6, 2, 2)), mask=np.zeros((6, 2, 2)))
    with pytest.raises(
        DecodeError, match=r"holds arrays \['image', 'mask'\] and none is named 'frames'"
    ):
        open_video(path)


def test_array_of_wrong_rank_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros((5, 5)))
    with pytest.raises(DecodeError, match=r"array of shape \(5, 5\); expected \(T, H, W\)"):
        open_video(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_video_reports_duration(counter_video: Path, backend: str) -> None:
    info = probe_video(counter_video, backend)
    assert (info.num_frames, info.fps, info.height, info.width, info.duration_s) == (
        40,
        10.0,
        32,
        32,
        4.0,
    )


def test_probe_video_reports_codec_with_pyav(counter_video: Path) -> None:
    assert probe_video(counter_video, "pyav").codec == "h264"


def _counting_probe(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real_probe = video.probe_video

    def probe(path: str, backend: str = "decord") -> VideoInfo:
        calls.append(str(path))
        return real_probe(path, backend)

    monkeypatch.setattr(video, "probe_video", probe)
    return calls


def test_probe_cache_second_probe_does_not_open_file(
    counter_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting_probe(monkeypatch)
    first = ProbeCache(tmp_path / "probes.sqlite").probe(counter_video)
    second = ProbeCache(tmp_path / "probes.sqlite").probe(counter_video)  # as a later run would
    assert first == second and len(calls) == 1


def test_probe_cache_reprobes_touched_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.npy"
    np.save(path, np.zeros((5, 2, 2), dtype=np.uint8))
    calls = _counting_probe(monkeypatch)
    cache = ProbeCache(tmp_path / "probes.sqlite")
    cache.probe(path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    cache.probe(path)
    assert len(calls) == 2
