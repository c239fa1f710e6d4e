"""FrameCache: decode once, memory-map after; stale, corrupt and half-written entries are rebuilt."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from counter_videos import counter_frames, write_video

from vidlearn.data import frame_cache
from vidlearn.data.clip_sampling import RandomClipSampler
from vidlearn.data.datasets import VideoClipDataset
from vidlearn.data.frame_cache import HEADER_BYTES, FrameCache
from vidlearn.data.transforms import ClipTransform, resize
from vidlearn.data.video import DecodeError, open_video

FrameIndices = Callable[[np.ndarray], list[int]]
SIZE = 16


def decoded_and_resized(path: Path) -> np.ndarray:
    """Every frame of `path` through ClipTransform's resize: what an entry must hold."""
    reader = open_video(path, "decord")
    frames = reader.read(range(reader.num_frames))
    return np.stack([resize(frame, SIZE) for frame in frames])


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the cache opens a decoder for, from now on."""
    opened: list[str] = []

    def counting_open(path: str, backend: str = "decord") -> object:
        opened.append(path)
        return open_video(path, backend)

    monkeypatch.setattr(frame_cache, "open_video", counting_open)
    return opened


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_miss_stores_every_frame_resized_to_size(
    counter_copies: list[Path], tmp_path: Path, backend: str
) -> None:
    cache = FrameCache(tmp_path / "cache", SIZE, backend=backend)
    reader = cache.open(counter_copies[0])
    assert (reader.num_frames, reader.height, reader.width, reader.fps) == (40, SIZE, SIZE, 10.0)
    assert np.array_equal(reader.read(range(40)), decoded_and_resized(counter_copies[0]))
    assert cache.entry_path(counter_copies[0]).is_file()


def test_hit_reads_frames_without_decoding(
    counter_copies: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    frame_indices: FrameIndices,
) -> None:
    FrameCache(tmp_path / "cache", SIZE).fill(counter_copies[0])
    opened = count_decodes(monkeypatch)
    frames = FrameCache(tmp_path / "cache", SIZE).open(counter_copies[0]).read([30, 2, 2])
    assert opened == [] and frame_indices(frames) == [30, 2, 2]


def test_entry_is_rebuilt_when_the_video_changes(
    counter_copies: list[Path], tmp_path: Path, frame_indices: FrameIndices
) -> None:
    cache = FrameCache(tmp_path / "cache", SIZE)
    video = counter_copies[0]
    cache.fill(video)
    write_video(video, counter_frames(40)[::-1].copy(), fps=10, gop=8)  # same name, reversed
    os.utime(
        video, ns=(time.time_ns(), time.time_ns() + 10**9)
    )  # a new mtime even on coarse clocks
    assert frame_indices(cache.open(video).read([0, 39])) == [39, 0]


def test_corrupt_entry_is_rebuilt(counter_copies: list[Path], tmp_path: Path) -> None:
    FrameCache(tmp_path / "cache", SIZE).fill(counter_copies[0])
    entry = FrameCache(tmp_path / "cache", SIZE).entry_path(counter_copies[0])
    with open(entry, "r+b") as file:  # flip bytes inside the frames, keep the length
        file.seek(HEADER_BYTES + 100)
        file.write(b"\xff" * 64)
    result = FrameCache(tmp_path / "cache", SIZE).fill(counter_copies[0])
    assert result.written
    frames = FrameCache(tmp_path / "cache", SIZE).open(counter_copies[0]).read(range(40))
    assert np.array_equal(frames, decoded_and_resized(counter_copies[0]))


def test_truncated_entry_is_rebuilt(counter_copies: list[Path], tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache", SIZE)
    cache.fill(counter_copies[0])
    entry = cache.entry_path(counter_copies[0])
    entry.write_bytes(entry.read_bytes()[: HEADER_BYTES + 500])
    assert cache.fill(counter_copies[0]).written
    assert entry.stat().st_size == HEADER_BYTES + 40 * SIZE * SIZE * 3


def test_other_size_or_backend_gets_its_own_entry(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    entries = {
        FrameCache(tmp_path, 16).entry_path(counter_copies[0]),
        FrameCache(tmp_path, 24).entry_path(counter_copies[0]),
        FrameCache(tmp_path, 16, backend="pyav").entry_path(counter_copies[0]),
        FrameCache(tmp_path, 16).entry_path(counter_copies[1]),
    }
    assert len(entries) == 4


def _fill_together(folder: Path, video: Path, both_writing: multiprocessing.Barrier) -> None:
    """Fill, waiting mid-write until the other writer is mid-write too."""
    cache = FrameCache(folder, SIZE)
    resize = cache._resize

    def resize_when_both_write(frames: np.ndarray) -> np.ndarray:
        both_writing.wait(30)
        return resize(frames)

    cache._resize = resize_when_both_write
    assert cache.fill(video).written


def test_two_processes_filling_one_entry_both_leave_a_valid_entry(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    context = multiprocessing.get_context("fork")
    both_writing = context.Barrier(2)
    writers = [
        context.Process(
            target=_fill_together, args=(tmp_path / "cache", counter_copies[0], both_writing)
        )
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        FrameCache(tmp_path / "cache", SIZE).entry_path(counter_copies[0]).name
    ]
    assert not FrameCache(tmp_path / "cache", SIZE).fill(counter_copies[0]).written


def _fill_slowly(folder: Path, video: Path, started: multiprocessing.Event) -> None:
    """Fill in chunks of one frame and stall after the first, so the test can kill the writer."""
    cache = FrameCache(folder, SIZE, chunk_mb=32 * 32 * 3 / 2**20)
    resize = cache._resize

    def resize_then_stall(frames: np.ndarray) -> np.ndarray:
        started.set()
        time.sleep(60)
        return resize(frames)

    cache._resize = resize_then_stall
    cache.fill(video)


def test_writer_killed_mid_write_leaves_no_entry_and_the_next_open_rebuilds(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    context = multiprocessing.get_context("fork")
    started = context.Event()
    writer = context.Process(
        target=_fill_slowly, args=(tmp_path / "cache", counter_copies[0], started)
    )
    writer.start()
    assert started.wait(30)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(10)
    cache = FrameCache(tmp_path / "cache", SIZE)
    entry = cache.entry_path(counter_copies[0])
    half_written = [p for p in entry.parent.iterdir() if p.name.startswith(".tmp-")]
    assert not entry.exists() and len(half_written) == 1
    frames = cache.open(counter_copies[0]).read(range(40))
    assert np.array_equal(frames, decoded_and_resized(counter_copies[0]))


def test_stale_temporary_file_of_a_dead_writer_is_removed(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path, SIZE)
    dead, live = tmp_path / ".tmp-dead-1-abc", tmp_path / ".tmp-live-2-def"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    old = time.time() - 2 * frame_cache.STALE_TEMP_S
    os.utime(dead, (old, old))
    assert cache.evict() == [dead] and live.exists()


def test_budget_evicts_least_recently_used_entries(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    entry_bytes = HEADER_BYTES + 40 * SIZE * SIZE * 3
    cache = FrameCache(tmp_path / "cache", SIZE, max_gb=2.5 * entry_bytes / 1e9)
    first, second, third = counter_copies
    cache.fill(first)
    cache.fill(second)
    past = time.time() - 100
    os.utime(cache.entry_path(second), (past, past))  # second: used longest ago
    cache.open(first).close()
    cache.fill(third)
    kept = {p.name for p in (tmp_path / "cache").iterdir()}
    assert kept == {cache.entry_path(first).name, cache.entry_path(third).name}


def test_missing_video_raises_decode_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match=r"gone\.mp4: file not found"):
        FrameCache(tmp_path / "cache", SIZE).open(tmp_path / "gone.mp4")


def test_arrays_are_read_directly_not_cached(tmp_path: Path) -> None:
    np.save(tmp_path / "cine.npy", np.zeros((5, 8, 8), dtype=np.uint8))
    cache = FrameCache(tmp_path / "cache", SIZE)
    assert cache.open(tmp_path / "cine.npy").read([0, 4]).shape == (2, 8, 8, 1)
    assert list((tmp_path / "cache").iterdir()) == []


def test_same_clips_with_and_without_the_cache(counter_copies: list[Path], tmp_path: Path) -> None:
    def items(cache: FrameCache | None) -> list[torch.Tensor]:
        transform = ClipTransform(None, SIZE, [0.5] * 3, [0.25] * 3)
        dataset = VideoClipDataset(
            [str(p) for p in counter_copies],
            np.zeros(3),
            RandomClipSampler(6),
            transform,
            frame_cache=cache,
        )
        random.seed(0)
        return [dataset[i]["input"] for i in (0, 1, 2, 0, 1, 2)]

    cache = FrameCache(tmp_path / "cache", SIZE)
    for without, cold, warm in zip(items(None), items(cache), items(cache), strict=True):
        assert torch.equal(without, cold) and torch.equal(without, warm)


def test_video_that_cannot_be_decoded_to_its_end_is_a_decode_error_leaving_no_file(
    truncated_video: Path, tmp_path: Path
) -> None:
    cache = FrameCache(tmp_path / "cache", SIZE)
    with pytest.raises(DecodeError, match=str(truncated_video)):
        cache.open(truncated_video)
    assert list((tmp_path / "cache").iterdir()) == []
