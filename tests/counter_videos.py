"""Counter videos shared by the decoding and fault tests: frame i has grey level 4 i (mod 256),
so a decoded frame's mean names its index and any wrong, missing or repeated frame shows.

Importable from tests (setup.cfg puts tests/ on the path).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

STEP = 4  # grey level of frame i is STEP * i mod 256


def counter_frames(num_frames: int, height: int = 32, width: int = 32) -> np.ndarray:
    """(T, H, W, 3) uint8 frames whose grey level is STEP x frame index (mod 256)."""
    levels = (np.arange(num_frames) * STEP % 256).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def frame_numbers(frames: np.ndarray) -> list[int]:
    """The frame index (mod 64) each decoded counter frame `(T, H, W, C)` shows."""
    means = frames.reshape(len(frames), -1).astype(np.float64).mean(axis=1)
    return [round(mean / STEP) for mean in means]


def write_video(
    path: Path,
    frames: np.ndarray,
    *,
    fps: int = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int = 8,
    pts: list[int] | None = None,
    faststart: bool = False,
    rotate: int | None = None,
) -> Path:
    """Encode `frames (T, H, W, 3)` uint8; `pts` (in 1/fps/100 s ticks) makes the rate variable."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "0", "g": str(gop), "bf": "0", "preset": "ultrafast"}
        if pts is not None:
            stream.time_base = Fraction(1, fps * 100)
        if rotate is not None:
            stream.set_display_rotation(rotate)
        stream.thread_count = 1
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, fps * 100)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
