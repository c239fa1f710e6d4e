"""Third-party test media (../shared/data/videos): every file decodes or fails with a clear DecodeError.

Skipped when the shared folder is absent; see its SOURCES.md for what each file exercises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig

from vidlearn.cli.train import train
from vidlearn.data.video import DecodeError, open_video

VIDEO_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"
VIDEOS = sorted(VIDEO_DIR.glob("*")) if VIDEO_DIR.is_dir() else []

# Up to a few seconds per 720p file on a loaded 2-core machine: run with `pytest -m slow`.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VIDEOS, reason=f"no shared test videos at {VIDEO_DIR}"),
]


@pytest.mark.parametrize("backend", ["decord", "pyav", "torchcodec", "torchcodec_approximate"])
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


@pytest.mark.parametrize("backend", ["torchcodec", "torchcodec_approximate"])
@pytest.mark.parametrize("path", VIDEOS, ids=[path.name for path in VIDEOS])
def test_real_video_reads_alike_with_torchcodec_and_pyav(path: Path, backend: str) -> None:
    try:
        reader, reference = open_video(path, backend), open_video(path, "pyav")
    except DecodeError:
        pytest.skip("one of the two cannot open it (the test above checks the error)")
    # PyAV estimates a count the header lacks from the duration (the FLV: 173 of its 174 frames);
    # torchcodec counts the packets.
    assert abs(reader.num_frames - reference.num_frames) <= 1
    last = min(reader.num_frames, reference.num_frames) - 1
    indices = [0, last // 2, last]
    frames, expected = reader.read(indices), reference.read(indices)
    assert frames.shape == expected.shape
    assert np.abs(frames.astype(int) - expected).mean() < 3


def test_rotated_phone_clip_reads_alike_with_decord_and_pyav() -> None:
    path = VIDEO_DIR / "moviepy_fire2_phone_rotated.mp4"  # display matrix: rotation -180
    decord_frames = open_video(path, "decord").read([0, 12])
    pyav_frames = open_video(path, "pyav").read([0, 12])
    assert decord_frames.shape == pyav_frames.shape == (2, 720, 1280, 3)
    turned_back = np.rot90(pyav_frames, 2, axes=(1, 2))
    difference = np.abs(pyav_frames.astype(int) - decord_frames).mean()
    assert difference < 3 < np.abs(turned_back.astype(int) - decord_frames).mean()


@pytest.mark.torchcodec
def test_every_shared_clip_trains_one_epoch_with_the_default_backend(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    # torchcodec, auto's first choice, reads all 20 (decord cannot open 2: AV1 and a WebM without
    # a duration), so the default data.max_bad_fraction does not stop a folder of readable files.
    table = pd.read_csv(VIDEO_DIR.parent / "manifest.csv")
    table["path"] = [str(VIDEO_DIR.parent / path) for path in table["path"]]
    table["label"] = np.where(table["label"] == "test_pattern", "synthetic", "natural")
    table["split"] = np.where(table["split"] == "val", "val", "train")
    manifest = tmp_path / "shared.csv"
    table.to_csv(manifest, index=False)
    cfg = compose_train(
        f"data.manifest={manifest}",
        "data.allow_outside_root=true",
        "data.size=32",
        "data.frames=4",
        "data.batch_size=4",
        "augment=none",
        "test=false",
    )
    summary = train(cfg)
    assert summary["skipped"] == []
    assert summary["backends"] == {"torchcodec": 20}
    assert summary["num_train"] + summary["num_val"] == len(VIDEOS) == 20
