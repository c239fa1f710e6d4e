"""Tiny generated videos shared by the decoding, sampling and benchmark-adjacent tests."""

from __future__ import annotations

import shutil
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from counter_videos import counter_frames, frame_numbers, write_video

COUNTER_FRAMES = 40
COUNTER_FPS = 10


@pytest.fixture(scope="session")
def frame_indices() -> Callable[[np.ndarray], list[int]]:
    """Map decoded counter frames (T, H, W, 3) back to the frame indices they show."""
    return frame_numbers


@pytest.fixture(scope="session")
def counter_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames, 32x32, 10 fps, a keyframe every 8 frames; frame i has grey level 4 i."""
    root = tmp_path_factory.mktemp("counter")
    return write_video(root / "counter.mp4", counter_frames(COUNTER_FRAMES), fps=COUNTER_FPS, gop=8)


@pytest.fixture(scope="session")
def truncated_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60-frame video whose header (written first) promises more frames than its data holds."""
    root = tmp_path_factory.mktemp("truncated")
    whole = write_video(
        root / "whole.mp4", counter_frames(60), fps=COUNTER_FPS, gop=5, faststart=True
    )
    data = whole.read_bytes()
    truncated = root / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.99)])  # cuts into the last frame's packet
    return truncated


@pytest.fixture(scope="session")
def broken_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files every backend must reject with DecodeError, by the reason they are broken."""
    root = tmp_path_factory.mktemp("broken")
    files = {
        "missing": root / "missing.mp4",
        "empty": root / "empty.mp4",
        "random_bytes": root / "random.mp4",
        "text_as_avi": root / "notes.avi",
        "audio_only": root / "audio.wav",
        "corrupt_npy": root / "corrupt.npy",
    }
    files["empty"].write_bytes(b"")
    files["random_bytes"].write_bytes(
        np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    )
    files["text_as_avi"].write_text("these are meeting notes, not a video\n" * 20)
    with wave.open(str(files["audio_only"]), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(np.zeros(800, dtype=np.int16).tobytes())
    files["corrupt_npy"].write_bytes(b"\x93NUMPY\x01\x00garbage")
    return files


@pytest.fixture(scope="session")
def probe_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Manifest (path,label,split) of 8 counter clips, a clip 48 pixels wide (decord cannot copy
    its frames; PyAV can), a 3-frame clip in val and an empty file in train."""
    root = tmp_path_factory.mktemp("probe_set")
    rows = []
    for i in range(8):
        write_video(root / f"clip_{i}.mp4", counter_frames(12))
        rows.append((f"clip_{i}.mp4", "ab"[i % 2], "train" if i < 6 else "val"))
    write_video(root / "wide_48.mp4", counter_frames(12, 32, 48))
    write_video(root / "three_frames.mp4", counter_frames(3))
    (root / "empty.mp4").write_bytes(b"")
    rows += [("wide_48.mp4", "a", "train"), ("three_frames.mp4", "b", "val")]
    rows += [("empty.mp4", "b", "train")]
    manifest = root / "manifest.csv"
    manifest.write_text("path,label,split\n" + "".join(",".join(row) + "\n" for row in rows))
    return manifest


@pytest.fixture
def counter_copies(tmp_path: Path, counter_video: Path) -> list[Path]:
    """Three copies of the counter video in this test's own folder, free to change or delete."""
    folder = tmp_path / "videos"
    folder.mkdir()
    return [Path(shutil.copy(counter_video, folder / f"counter{i}.mp4")) for i in range(3)]


def _bar_pose(frame: np.ndarray) -> tuple[float, float]:
    """(column of the centroid, angle of the long axis in degrees) of a bright bar (H, W) >= 0."""
    weights = frame.astype(np.float64)
    rows, columns = np.indices(weights.shape)
    total = weights.sum()
    row, column = (rows * weights).sum() / total, (columns * weights).sum() / total
    d_row, d_column = rows - row, columns - column
    mu_rr, mu_cc = (d_row**2 * weights).sum(), (d_column**2 * weights).sum()
    mu_rc = (d_row * d_column * weights).sum()
    return column, float(np.degrees(0.5 * np.arctan2(2 * mu_rc, mu_rr - mu_cc)))


@pytest.fixture(scope="session")
def bar_pose() -> Callable[[np.ndarray], tuple[float, float]]:
    """Read a warp back from a bright bar: (centroid column, long-axis angle in degrees)."""
    return _bar_pose
