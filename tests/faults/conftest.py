"""Faulty inputs for tests/faults, each generated at test time (nothing is stored in the repository).

Videos use "counter" frames whose grey level is 4 x frame index (mod 256), so a decoded frame's
mean tells which frame it is, and a wrong frame can never pass for a right one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from counter_videos import counter_frames, frame_numbers, write_video


def write_audio_only(path: Path) -> Path:
    """An .mp4 container holding one AAC audio stream and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        samples = np.zeros((1, 1024 * 8), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        container.mux(stream.encode())
    return path


def write_no_frames(path: Path) -> Path:
    """An .avi with a declared MJPEG video stream but not one frame in it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuvj420p"
        container.start_encoding()
    return path


def write_undecodable(path: Path) -> Path:
    """A well-formed .mp4 (header, index, 12 packets) whose every video packet is noise."""
    good = write_video(path.with_suffix(".tmp.mp4"), counter_frames(12), gop=4)
    data = bytearray(good.read_bytes())
    good.unlink()
    start = data.index(b"mdat") + 4  # the packets' payload: [start, moov) when moov comes last
    end = data.index(b"moov") - 4
    data[start:end] = np.random.default_rng(0).integers(0, 256, end - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def make_bad_videos(folder: Path) -> dict[str, Path]:
    """Every broken video of the fault table, by case name."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "zero_bytes": folder / "zero_bytes.mp4",
        "random_bytes": folder / "random_bytes.mp4",
        "text_as_avi": folder / "notes.avi",
    }
    files["zero_bytes"].write_bytes(b"")
    files["random_bytes"].write_bytes(
        np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    )
    files["text_as_avi"].write_text("these are meeting notes, not a video\n" * 20)
    whole = write_video(folder / "whole.mp4", counter_frames(60), gop=5, faststart=True)
    files["truncated"] = folder / "truncated.mp4"
    files["truncated"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    files["no_video_stream"] = write_audio_only(folder / "audio_only.mp4")
    files["no_frames"] = write_no_frames(folder / "no_frames.avi")
    files["undecodable"] = write_undecodable(folder / "undecodable.mp4")
    return files


@pytest.fixture(scope="session")
def bad_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bad_videos(tmp_path_factory.mktemp("bad_videos"))


def make_odd_videos(folder: Path) -> dict[str, Path]:
    """Unusual but valid videos of the fault table, by case name."""
    folder.mkdir(parents=True, exist_ok=True)
    # pts in 1/1000 s: every third frame lasts three times as long.
    variable = np.cumsum([0] + [100 if i % 3 else 300 for i in range(39)]).tolist()
    return {
        "one_frame": write_video(folder / "one_frame.mp4", counter_frames(1)),
        "shorter_than_clip": write_video(folder / "three_frames.mp4", counter_frames(3)),
        # x264 refuses odd sizes in 4:2:0; 4:4:4 keeps every pixel of a 17 x 13 frame.
        "odd_size": write_video(
            folder / "odd_17x13.mp4", counter_frames(12, 13, 17), pix_fmt="yuv444p"
        ),
        "grayscale": write_video(
            folder / "gray.mkv", counter_frames(12), codec="ffv1", pix_fmt="gray"
        ),
        "rotated": write_video(folder / "rotated.mp4", counter_frames(12, 32, 64), rotate=90),
        "width_48": write_video(folder / "width_48.mp4", counter_frames(12, 32, 48)),
        "variable_rate": write_video(
            folder / "variable_rate.mp4", counter_frames(40), pts=variable
        ),
        "non_ascii_name": write_video(folder / "vidéo clip ü 日本.mp4", counter_frames(12)),
    }


@pytest.fixture(scope="session")
def odd_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_odd_videos(tmp_path_factory.mktemp("odd_videos"))


def mixed_manifest(folder: Path, demo_manifest: Path, extra: dict[str, Path]) -> Path:
    """The demo manifest with absolute paths, plus `extra` files as clockwise training rows."""
    table = pd.read_csv(demo_manifest)
    table["path"] = [str(demo_manifest.parent / path) for path in table["path"]]
    rows = pd.DataFrame(
        {"path": [str(p) for p in extra.values()], "label": "clockwise", "split": "train"}
    )
    manifest = folder / "mixed.csv"
    pd.concat([table[["path", "label", "split"]], rows]).to_csv(manifest, index=False)
    return manifest


@pytest.fixture
def make_mixed_manifest(tmp_path: Path, demo_videos: Path) -> Callable[[dict[str, Path]], Path]:
    """Build a manifest of the 30 demo videos plus the given files (clockwise, train split)."""
    return lambda extra: mixed_manifest(tmp_path, demo_videos, extra)


@pytest.fixture(scope="session")
def numbers_of() -> Callable[[np.ndarray], list[int]]:
    """Map decoded counter frames `(T, H, W, C)` to the frame indices (mod 64) they show."""
    return frame_numbers


@pytest.fixture(scope="session")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 frames (about 33 minutes at 10 fps), 32 x 32, a keyframe every 250 frames."""
    folder = tmp_path_factory.mktemp("long_video")
    return write_video(folder / "long.mp4", counter_frames(20_000), gop=250)
