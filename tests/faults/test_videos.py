"""Broken and unusual videos: a DecodeError naming the file and what to do, a counted skip at run
time, or the right frames; never a crash deep in a worker, never a wrong frame passed off as right."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from vidlearn.cli.train import train
from vidlearn.data.bad_files import TooManyBadFilesError
from vidlearn.data.clip_sampling import CenterClipSampler
from vidlearn.data.datasets import VideoClipDataset
from vidlearn.data.transforms import ClipTransform
from vidlearn.data.video import DecodeError, auto_backends, open_video

BACKENDS = ["decord", "pyav"]
BROKEN = [
    "zero_bytes",
    "random_bytes",
    "text_as_avi",
    "no_video_stream",
    "no_frames",
    "undecodable",
]
TINY = ["data.size=32", "data.frames=6", "data.batch_size=4", "augment=none"]


def read_clip(path: Path, backend: str, clip_length: int = 6) -> np.ndarray:
    reader = open_video(path, backend)
    try:
        clips = CenterClipSampler(clip_length)(
            reader.num_frames, reader.fps, np.random.default_rng(0)
        )
        return reader.read(clips[0])
    finally:
        reader.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BROKEN)
def test_broken_video_raises_decode_error_naming_the_file(
    bad_videos: dict[str, Path], case: str, backend: str
) -> None:
    with pytest.raises(DecodeError) as error:
        read_clip(bad_videos[case], backend)
    message = str(error.value)
    assert message.startswith(f"{bad_videos[case]}: ")
    assert any(hint in message for hint in ("remove its row", "re-encode", "backend=pyav"))


def test_zero_byte_video_says_it_is_empty(bad_videos: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match=r"file is empty \(0 bytes\)"):
        open_video(bad_videos["zero_bytes"])


def test_container_without_video_stream_says_so(bad_videos: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="no video stream"):
        open_video(bad_videos["no_video_stream"], "pyav")


def test_video_stream_without_frames_is_a_decode_error_not_an_ffmpeg_crash(
    bad_videos: dict[str, Path],
) -> None:
    # PyAV used to leak av.error.PermissionError from the seek after counting zero packets.
    with pytest.raises(DecodeError, match="has no frames"):
        open_video(bad_videos["no_frames"], "pyav")


def test_truncated_video_with_decord_suggests_pyav(bad_videos: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="backend=pyav"):
        read_clip(bad_videos["truncated"], "decord")


def test_truncated_video_with_pyav_repeats_the_last_decodable_frame_and_warns(
    bad_videos: dict[str, Path], caplog: pytest.LogCaptureFixture, numbers_of: Callable
) -> None:
    reader = open_video(bad_videos["truncated"], "pyav")
    with caplog.at_level(logging.WARNING, logger="vidlearn.data.video"):
        frames = reader.read([0, 1, 2, reader.num_frames - 1])
    numbers = numbers_of(frames)
    assert numbers[:3] == [0, 1, 2] and numbers[3] < reader.num_frames - 1
    assert (
        f"{bad_videos['truncated']}: frames" in caplog.text and "cannot be decoded" in caplog.text
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("one_frame", [0] * 6),
        ("shorter_than_clip", [0, 1, 2, 0, 1, 2]),  # short_video="loop", the default
        ("odd_size", [3, 4, 5, 6, 7, 8]),
        ("grayscale", [3, 4, 5, 6, 7, 8]),
        ("non_ascii_name", [3, 4, 5, 6, 7, 8]),
    ],
)
def test_unusual_video_yields_the_exact_frames_as_rgb(
    odd_videos: dict[str, Path], numbers_of: Callable, case: str, expected: list[int], backend: str
) -> None:
    frames = read_clip(odd_videos[case], backend)
    assert frames.dtype == np.uint8 and frames.shape[0] == 6 and frames.shape[-1] == 3
    assert numbers_of(frames) == expected


def test_odd_sized_frames_are_resized_to_the_configured_size(odd_videos: dict[str, Path]) -> None:
    dataset = VideoClipDataset(
        [str(odd_videos["odd_size"])],
        np.array([0]),
        CenterClipSampler(6),
        ClipTransform([], 32, [0.5] * 3, [0.25] * 3),
    )
    item = dataset[0]
    assert item["input"].shape == (6, 3, 32, 32) and item["skipped"] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_far_apart_frames_are_exact(
    odd_videos: dict[str, Path], numbers_of: Callable, backend: str
) -> None:
    # Runs over two seconds apart are read with a seek in constant-rate videos; a timestamp does
    # not name the frame in a variable-rate one.
    reader = open_video(odd_videos["variable_rate"], backend)
    assert numbers_of(reader.read([0, 20, 39])) == [0, 20, 39]


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotated_video_is_turned_as_displayed_by_both_backends(
    odd_videos: dict[str, Path], numbers_of: Callable, backend: str
) -> None:
    # Stored 64 wide x 32 high with a 90-degree display matrix: both backends turn it upright,
    # so a set read partly by decord and partly by PyAV (backend=auto) reads alike.
    frames = read_clip(odd_videos["rotated"], backend)
    assert frames.shape[1:3] == (64, 32)
    assert numbers_of(frames) == [3, 4, 5, 6, 7, 8]


def test_decord_width_it_cannot_copy_names_the_file_and_pyav(
    odd_videos: dict[str, Path], numbers_of: Callable
) -> None:
    with pytest.raises(DecodeError, match=r"multiple of 32 pixels wide.*backend=pyav") as error:
        read_clip(odd_videos["width_48"], "decord")
    assert str(odd_videos["width_48"]) in str(error.value)
    assert numbers_of(read_clip(odd_videos["width_48"], "pyav")) == [3, 4, 5, 6, 7, 8]


def test_bad_videos_met_at_run_time_are_skipped_counted_and_listed(
    compose_train: Callable[..., DictConfig],
    make_mixed_manifest: Callable[[dict[str, Path]], Path],
    bad_videos: dict[str, Path],
) -> None:
    broken = {case: bad_videos[case] for case in ("zero_bytes", "random_bytes", "undecodable")}
    # One batch of all 23 training rows: with probing off, only the files an epoch reads are
    # met, and smaller batches drop the last 3 rows (which ones depends on the shuffle).
    cfg = compose_train(
        f"data.manifest={make_mixed_manifest(broken)}",
        "data.allow_outside_root=true",
        "data.max_bad_fraction=0.5",
        "data.probe=false",
        "sampler=none",
        *(option for option in TINY if not option.startswith("data.batch_size=")),
        "data.batch_size=23",
    )
    summary = train(cfg)
    written = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert written["status"] == "ok" and written["skipped"] == summary["skipped"]
    assert sorted(record["path"] for record in written["skipped"]) == sorted(
        str(path) for path in broken.values()
    )
    assert all(record["reason"] and record["stage"] == "run" for record in written["skipped"])
    assert written["num_train"] == 23
    assert torch.load(summary["best_checkpoint"], weights_only=True)["state_dict"]


def test_broken_files_the_sampler_never_draws_are_still_listed(
    compose_train: Callable[..., DictConfig],
    make_mixed_manifest: Callable[[dict[str, Path]], Path],
    bad_videos: dict[str, Path],
) -> None:
    # The balanced sampler draws with replacement: without the probe, a broken file it never
    # drew went unreported. The probe reads every row once, so all three are listed.
    broken = {case: bad_videos[case] for case in ("zero_bytes", "truncated", "text_as_avi")}
    cfg = compose_train(
        f"data.manifest={make_mixed_manifest(broken)}",
        "data.allow_outside_root=true",
        "data.max_bad_fraction=0.5",
        "sampler=balanced",
        *TINY,
    )
    summary = train(cfg)
    written = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert {record["path"]: record["stage"] for record in written["skipped"]} == {
        str(path): "probe" for path in broken.values()
    }
    assert written["num_train"] == 20 and summary["backends"] == {auto_backends()[0]: 30}


def test_too_many_bad_videos_stop_the_run_listing_them(
    compose_train: Callable[..., DictConfig],
    make_mixed_manifest: Callable[[dict[str, Path]], Path],
    bad_videos: dict[str, Path],
) -> None:
    broken = {case: bad_videos[case] for case in ("zero_bytes", "text_as_avi")}
    cfg = compose_train(
        f"data.manifest={make_mixed_manifest(broken)}",
        "data.allow_outside_root=true",
        "sampler=none",
        *TINY,
    )
    with pytest.raises(TooManyBadFilesError) as error:
        train(cfg)
    message = str(error.value)
    # It stops at the first bad file past the limit, listing the bad files seen so far.
    assert "of 22 train files could not be read" in message
    assert "data.max_bad_fraction=0.01" in message
    assert any(str(path) in message for path in broken.values())
    assert not (Path(cfg.paths.output_dir) / "summary.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_very_long_video_reads_a_middle_clip_exactly(
    long_video: Path, numbers_of: Callable, backend: str
) -> None:
    # Speed is a benchmark's business (experiments/bench_decode.py), not a unit test's.
    reader = open_video(long_video, backend)
    frames = reader.read(np.arange(10_000, 10_008))
    assert reader.num_frames == 20_000
    assert numbers_of(frames) == [index % 64 for index in range(10_000, 10_008)]


def test_short_video_skipped_by_the_sampler_is_logged_with_its_path(
    odd_videos: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    paths = [str(odd_videos["shorter_than_clip"]), str(odd_videos["non_ascii_name"])]
    dataset = VideoClipDataset(
        paths,
        np.array([0, 1]),
        CenterClipSampler(6, short_video="skip"),
        ClipTransform([], 32, [0.5] * 3, [0.25] * 3),
        max_attempts=2,
    )
    with caplog.at_level(logging.WARNING, logger="vidlearn.data.datasets"):
        item = dataset[0]
    assert item["index"] == 1 and item["skipped"][0].path == paths[0]
    assert item["skipped"][0].reason.startswith("3 frames")
    assert f"skipping {paths[0]}: 3 frames" in caplog.text


def test_a_broken_file_whose_path_holds_a_colon_is_listed_verbatim_and_counted(
    compose_train: Callable[..., DictConfig],
    make_mixed_manifest: Callable[[dict[str, Path]], Path],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "take 2: ü"
    folder.mkdir()
    broken = folder / "clip: 日本.mp4"
    broken.write_bytes(b"")
    manifest = make_mixed_manifest({"colon": broken})
    options = [f"data.manifest={manifest}", "data.allow_outside_root=true", "data.probe=false"]
    cfg = compose_train(*options, "data.max_bad_fraction=0.5", "sampler=none", *TINY)
    train(cfg)
    written = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert written["skipped"] == [
        {
            "path": str(broken),
            "reason": "file is empty (0 bytes); re-export it or remove its row",
            "stage": "run",
        }
    ]
    # 1 of 21 training files: over a share of 0.01, so the run stops naming it.
    strict = compose_train(
        *options,
        "data.max_bad_fraction=0.01",
        "sampler=none",
        *TINY,
        f"paths.output_dir={tmp_path / 'strict'}",
    )
    with pytest.raises(TooManyBadFilesError, match="1 of 21 train files") as error:
        train(strict)
    assert str(broken) in str(error.value)
