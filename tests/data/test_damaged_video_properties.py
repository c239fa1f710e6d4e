"""Property: a real video cut short or overwritten anywhere decodes or is a DecodeError naming it.

Users' files arrive truncated by an interrupted copy or with damaged bytes. Starting from the
third-party media in ../shared/data/videos (VFR, rotation, 10-bit, multi-stream, no duration,
VP6, AV1), each example damages one file (cut at a drawn point, or a drawn byte range
overwritten with noise) and reads drawn frames with a drawn backend: the reader must give
`(T, H, W, 3)` uint8 frames or raise a DecodeError whose message starts with the path, never
another exception (which would end a loader worker instead of skipping the file).

Planted bug this test caught: `DecordReader.read` no longer turning decord's DECORDError into a
DecodeError (a webm cut short then raised "Error getting frame at: 0"). Not caught in the
default 30 examples: removing `except av.FFmpegError` from `PyAVReader.read` (the truncation
tests of tests/data/test_video.py hold that case).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidlearn.data.video import DecodeError, open_video

VIDEO_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"
# The small files: each example decodes one, and the 720p ones take seconds on a loaded machine.
VIDEOS = (
    sorted(p for p in VIDEO_DIR.glob("*") if p.stat().st_size < 700_000)
    if VIDEO_DIR.is_dir()
    else []
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VIDEOS, reason=f"no shared test videos at {VIDEO_DIR}"),
]


def damaged(data: bytes, kind: str, where: float, length: int, seed: int) -> bytes:
    """`data` cut at fraction `where`, or with `length` bytes from there replaced by noise."""
    start = int(len(data) * where)
    if kind == "cut":
        return data[: max(start, 1)]
    noise = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    return data[:start] + noise[: len(data) - start] + data[start + length :]


@given(
    video=st.sampled_from(VIDEOS or [Path("none")]),
    kind=st.sampled_from(["cut", "noise"]),
    where=st.floats(0.05, 0.95),  # past the header, before the end: where decoders stop
    length=st.integers(1, 4096),
    seed=st.integers(0, 2**16),
    backend=st.sampled_from(["decord", "pyav", "torchcodec"]),
    data=st.data(),
)
def test_a_damaged_real_video_reads_frames_or_raises_a_decode_error_naming_it(
    tmp_path_factory: pytest.TempPathFactory,
    video: Path,
    kind: str,
    where: float,
    length: int,
    seed: int,
    backend: str,
    data: st.DataObject,
) -> None:
    path = tmp_path_factory.mktemp("damaged") / video.name
    path.write_bytes(damaged(video.read_bytes(), kind, where, length, seed))
    try:
        reader = open_video(path, backend)
        try:
            count = reader.num_frames
            indices = data.draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=4))
            frames = reader.read(indices)
            size = (reader.height, reader.width)
        finally:
            reader.close()
    except DecodeError as error:
        assert str(error).startswith(f"{path}: ")
        return
    assert frames.shape == (len(indices), *size, 3) and frames.dtype == np.uint8
