"""Third-party test media (../shared/data/videos): every file decodes or fails with a clear DecodeError.

Skipped when the shared folder is absent; see its SOURCES.md for what each file exercises.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidlearn.data.video import DecodeError, open_video

VIDEO_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"
VIDEOS = sorted(VIDEO_DIR.glob("*")) if VIDEO_DIR.is_dir() else []

# Up to a few seconds per 720p file on a loaded 2-core machine: run with `pytest -m slow`.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VIDEOS, reason=f"no shared test videos at {VIDEO_DIR}"),
]


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("path", VIDEOS, ids=[path.name for path in VIDEOS])
def test_real_video_decodes_first_middle_last_or_raises_decode_error(
    path: Path, backend: str
) -> None:
    try:
        reader = open_video(path, backend)
        indices = [0, reader.num_frames // 2, reader.num_frames - 1]
        frames = reader.read(indices)
        size = (reader.height, reader.width)
        reader.close()
    except DecodeError as error:
        assert str(error).startswith(f"{path}: ") and "; " in str(
            error
        )  # names the file and what to do
        return
    assert frames.shape == (3, *size, 3) and frames.dtype == np.uint8
    assert reader.fps > 0 and frames.std() > 0  # real pixels, not an empty buffer
