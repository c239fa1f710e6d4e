"""Tiny generated videos shared by the decoding, sampling and benchmark-adjacent tests."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

COUNTER_FRAMES = 40
COUNTER_FPS = 10
COUNTER_STEP = (
    4  # grey level of frame i is COUNTER_STEP * i (< 256 for 60 frames), so a frame's mean names it
)


def write_video(
    path: Path, frames: np.ndarray, fps: int, gop: int, faststart: bool = False
) -> Path:
    """Encode `frames` (T, H, W, 3) uint8 as lossless H.264 without B-frames."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {
            "crf": "0",
            "g": str(gop),
            "bf": "0",
            "preset": "ultrafast",
            "threads": "1",
        }
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return path


def counter_frames(num_frames: int, size: int = 32) -> np.ndarray:
    """(T, size, size, 3) uint8 frames whose grey level is COUNTER_STEP x frame index."""
    levels = (np.arange(num_frames) * COUNTER_STEP % 256).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, size, size, 3)).copy()


def _frame_indices(frames: np.ndarray) -> list[int]:
    """Recover each counter frame's index from its mean grey level."""
    return [
        round(float(level) / COUNTER_STEP) for level in frames.reshape(len(frames), -1).mean(axis=1)
    ]


@pytest.fixture(scope="session")
def frame_indices() -> Callable[[np.ndarray], list[int]]:
    """Map decoded counter frames (T, H, W, 3) back to the frame indices they show."""
    return _frame_indices


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
