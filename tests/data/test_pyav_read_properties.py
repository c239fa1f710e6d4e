"""Property test of PyAVReader's running decoder: any sequence of reads on one reader (out of
order, backwards, repeated indices, forward skips) returns the frames asked for, at a constant
frame rate (seeks) and a variable one (decoded from the start)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from counter_videos import counter_frames, frame_numbers, write_video
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data.video import PyAVReader

FRAMES = 60


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """A 10 fps video with a keyframe every 8 frames, and a variable-rate one (pts in ms)."""
    root = tmp_path_factory.mktemp("pyav_reads")
    pts = np.cumsum([0] + [100 if i % 3 else 300 for i in range(FRAMES - 1)]).tolist()
    return {
        False: write_video(root / "constant.mp4", counter_frames(FRAMES), fps=10, gop=8),
        True: write_video(root / "variable.mp4", counter_frames(FRAMES), pts=pts),
    }


reads = st.lists(
    st.lists(st.integers(0, FRAMES - 1), min_size=1, max_size=8), min_size=1, max_size=6
)


@settings(deadline=None)
@given(sequence=reads, variable=st.booleans(), threads=st.sampled_from([1, 2]))
def test_any_sequence_of_reads_on_one_reader_returns_the_frames_asked_for(
    videos: dict[bool, Path], sequence: list[list[int]], variable: bool, threads: int
) -> None:
    """Caught a planted bug: the running decoder continued for a read that starts before where
    the previous read stopped (a backwards read)."""
    reader = PyAVReader(str(videos[variable]), threads=threads)
    try:
        for indices in sequence:
            assert frame_numbers(reader.read(indices)) == indices
    finally:
        reader.close()
