"""Property test of TorchCodecReader against PyAVReader: any indices (the last frame included,
out of order, repeated), in either seek mode, at a constant and a variable frame rate, read the
same frames as PyAV does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from counter_videos import counter_frames, frame_numbers, write_video
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data.video import PyAVReader, TorchCodecReader

FRAMES = 60


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """A 10 fps video with a keyframe every 8 frames, and a variable-rate one (pts in ms)."""
    root = tmp_path_factory.mktemp("torchcodec_reads")
    pts = np.cumsum([0] + [100 if i % 3 else 300 for i in range(FRAMES - 1)]).tolist()
    return {
        False: write_video(root / "constant.mp4", counter_frames(FRAMES), fps=10, gop=8),
        True: write_video(root / "variable.mp4", counter_frames(FRAMES), pts=pts),
    }


@pytest.mark.torchcodec
@settings(deadline=None, max_examples=15)  # two decoders opened per example
@given(
    indices=st.lists(st.integers(0, FRAMES - 1), min_size=1, max_size=8).map(
        lambda wanted: [*wanted, FRAMES - 1]  # the last frame in every read
    ),
    variable=st.booleans(),
    seek_mode=st.sampled_from(["exact", "approximate"]),
)
def test_torchcodec_reads_the_frames_pyav_reads(
    videos: dict[bool, Path], indices: list[int], variable: bool, seek_mode: str
) -> None:
    """Caught a planted bug: approximate seeks kept for a variable-rate video (its header's
    rate turns index 59 into frame 35)."""
    path = str(videos[variable])
    reader, reference = TorchCodecReader(path, seek_mode=seek_mode), PyAVReader(path)
    try:
        frames, expected = reader.read(indices), reference.read(indices)
    finally:
        reader.close()
        reference.close()
    assert frame_numbers(frames) == indices
    assert frames.shape == expected.shape and frames.dtype == np.uint8
    assert np.abs(frames.astype(int) - expected).mean() < 1  # same colour conversion, +-1 grey
