"""FrameCache: decode once, memory-map after; stale, corrupt and half-written entries are rebuilt."""

from __future__ import annotations

import errno
import gc
import logging
import multiprocessing
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from counter_videos import counter_frames, write_video

from vidlearn.data import frame_cache
from vidlearn.data import video as video_module
from vidlearn.data.clip_sampling import RandomClipSampler
from vidlearn.data.datasets import VideoClipDataset
from vidlearn.data.frame_cache import HEADER_BYTES, LOCK_NAME, FrameCache
from vidlearn.data.transforms import ClipTransform, resize
from vidlearn.data.video import DecodeError, PyAVReader, open_video

FrameIndices = Callable[[np.ndarray], list[int]]
SIZE = 16


@pytest.fixture(scope="session")
def textured_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames of noise on a gradient, 32x32, 10 fps: unlike flat frames, every resize
    interpolation gives other pixels, so only the clip transform's own resize matches."""
    ramp = np.linspace(0, 150, 32)[None, :, None] + np.linspace(0, 60, 32)[:, None, None]
    noise = np.random.default_rng(0).integers(0, 40, (40, 32, 32, 3))
    frames = (ramp + noise).astype(np.uint8)  # (T, H, W, 3)
    root = tmp_path_factory.mktemp("textured")
    return write_video(root / "textured.mp4", frames, fps=10, gop=8)


@pytest.fixture
def textured_copies(tmp_path: Path, textured_video: Path) -> list[Path]:
    """Three copies of the textured video in this test's own folder."""
    folder = tmp_path / "textured"
    folder.mkdir()
    return [Path(shutil.copy(textured_video, folder / f"textured{i}.mp4")) for i in range(3)]


def decoded_and_resized(path: Path) -> np.ndarray:
    """Every frame of `path` through ClipTransform's resize: what an entry must hold."""
    return decoded_and_resized_frames(path, len(open_video(path, "decord").reader))


def decoded_and_resized_frames(path: Path, stop: int) -> np.ndarray:
    """Frames `0 .. stop - 1` of `path` through ClipTransform's resize."""
    reader = open_video(path, "decord")
    frames = reader.read(range(stop))
    reader.close()
    return np.stack([resize(frame, SIZE) for frame in frames])


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the cache opens a decoder for, from now on."""
    opened: list[str] = []

    def counting_open(path: str, backend: str = "decord", threads: int = 1) -> object:
        opened.append(path)
        return open_video(path, backend, threads)

    monkeypatch.setattr(frame_cache, "open_video", counting_open)
    return opened


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_miss_stores_every_frame_resized_to_size(
    textured_copies: list[Path], tmp_path: Path, backend: str
) -> None:
    cache = FrameCache(tmp_path / "cache", SIZE, backend=backend)
    reader = cache.open(textured_copies[0])
    assert (reader.num_frames, reader.height, reader.width, reader.fps) == (40, SIZE, SIZE, 10.0)
    assert np.array_equal(reader.read(range(40)), decoded_and_resized(textured_copies[0]))
    assert cache.entry_path(textured_copies[0]).is_file()


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
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name != LOCK_NAME] == [
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


def test_budget_evicts_the_least_recently_read_entry_not_the_oldest_written(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    entry_bytes = HEADER_BYTES + 40 * SIZE * SIZE * 3
    cache = FrameCache(tmp_path / "cache", SIZE, max_gb=3.5 * entry_bytes / 1e9)
    first, second, third = counter_copies
    fourth = Path(shutil.copy(first, first.with_name("counter3.mp4")))
    # Ages come from real time, not os.utime: a utime bumps the ctime, after which the kernel
    # (relatime) stamps the next read itself and a missing stamp by the cache would not show.
    cache.fill(first)
    cache.open(first).close()  # a first read: relatime would stamp this one too
    for video in (second, third):
        time.sleep(0.02)
        cache.fill(video)
    time.sleep(0.02)
    cache.open(first).close()  # first: written first, read last; relatime skips this stamp
    cache.fill(fourth)
    kept = {p.name for p in (tmp_path / "cache").glob("*.frames")}
    assert kept == {cache.entry_path(v).name for v in (first, third, fourth)}


def test_missing_video_raises_decode_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match=r"gone\.mp4: file not found"):
        FrameCache(tmp_path / "cache", SIZE).open(tmp_path / "gone.mp4")


def test_arrays_are_read_directly_not_cached(tmp_path: Path) -> None:
    np.save(tmp_path / "cine.npy", np.zeros((5, 8, 8), dtype=np.uint8))
    cache = FrameCache(tmp_path / "cache", SIZE)
    assert cache.open(tmp_path / "cine.npy").read([0, 4]).shape == (2, 8, 8, 1)
    assert list((tmp_path / "cache").iterdir()) == []


def test_same_clips_with_and_without_the_cache(textured_copies: list[Path], tmp_path: Path) -> None:
    def items(cache: FrameCache | None) -> list[torch.Tensor]:
        transform = ClipTransform(None, SIZE, [0.5] * 3, [0.25] * 3)
        dataset = VideoClipDataset(
            [str(p) for p in textured_copies],
            np.zeros(3),
            RandomClipSampler(6),
            transform,
            frame_cache=cache,
        )
        random.seed(0)
        return [dataset[i]["input"] for i in (0, 1, 2, 0, 1, 2)]

    cache = FrameCache(tmp_path / "cache", SIZE)
    # OpenCV rounds a clip's resize (frames stacked as channels) and a frame's resize apart by
    # at most one grey level: 1/255 before normalising by the std of 0.25.
    grey_level = 1 / 255 / 0.25
    for without, cold, warm in zip(items(None), items(cache), items(cache), strict=True):
        assert torch.allclose(without, cold, rtol=0, atol=1.01 * grey_level)
        assert torch.equal(cold, warm)


def test_filling_a_video_that_cannot_be_decoded_to_its_end_is_a_decode_error_leaving_no_file(
    truncated_video: Path, tmp_path: Path
) -> None:
    cache = FrameCache(tmp_path / "cache", SIZE)
    with pytest.raises(DecodeError, match=str(truncated_video)):
        cache.fill(truncated_video)
    assert list((tmp_path / "cache").iterdir()) == []


def count_folder_scans(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[str]:
    """Listings of `folder` (os.scandir, os.listdir) from now on."""
    scans: list[str] = []
    for name in ("scandir", "listdir"):
        real = getattr(os, name)

        def counting(path: str | Path = ".", real: Callable = real) -> object:
            if Path(path) == folder:
                scans.append(str(path))
            return real(path)

        monkeypatch.setattr(os, name, counting)
    return scans


@pytest.fixture
def small_videos(tmp_path: Path) -> list[Path]:
    """60 copies of an 8-frame 32x32 video: cheap entries for budget bookkeeping."""
    folder = tmp_path / "small"
    folder.mkdir()
    first = write_video(folder / "small0.mp4", counter_frames(8))
    return [first] + [Path(shutil.copy(first, folder / f"small{i}.mp4")) for i in range(1, 60)]


def test_without_a_budget_writes_do_not_list_the_folder(
    small_videos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FrameCache(tmp_path / "cache", 4)
    cache.fill(small_videos[0])  # the first write may sweep what killed writers left
    scans = count_folder_scans(monkeypatch, cache.folder)
    for video in small_videos[1:10]:
        cache.fill(video)
    assert scans == []


def test_with_a_budget_writes_rarely_list_the_folder_and_the_budget_holds(
    small_videos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_bytes = HEADER_BYTES + 8 * 4 * 4 * 3
    cache = FrameCache(tmp_path / "cache", 4, max_gb=40 * entry_bytes / 1e9)
    listed = os.listdir
    scans = count_folder_scans(monkeypatch, cache.folder)
    for video in small_videos:
        cache.fill(video)
        sizes = [os.stat(cache.folder / name).st_size for name in listed(cache.folder)]
        assert sum(sizes) <= cache.max_bytes
    assert len(scans) <= len(small_videos) / 4


def count_pyav_decoded_frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Frames PyAVReader decodes from now on (one entry per frame)."""
    decoded: list[int] = []
    numbered = video_module.numbered_frames

    def counting(*args: object) -> object:
        for index, frame in numbered(*args):
            decoded.append(index)
            yield index, frame

    monkeypatch.setattr(video_module, "numbered_frames", counting)
    return decoded


def test_variable_frame_rate_video_is_decoded_once_when_filled_with_pyav(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frame_indices: FrameIndices
) -> None:
    # pts in 1/1000 s: every third frame lasts three times as long.
    pts = np.cumsum([0] + [100 if i % 3 else 300 for i in range(39)]).tolist()
    video = write_video(tmp_path / "variable.mp4", counter_frames(40), pts=pts)
    assert not PyAVReader(str(video)).constant_rate
    decoded = count_pyav_decoded_frames(monkeypatch)
    cache = FrameCache(tmp_path / "cache", SIZE, backend="pyav", chunk_mb=4 * 32 * 32 * 3 / 2**20)
    frames = cache.open(video).read(range(40))
    assert frame_indices(frames) == list(range(40))
    assert len(decoded) <= 41  # each frame once (and one read ahead at most)


def _collect_garbage_and_exit() -> None:
    gc.collect()
    os._exit(0)


def test_a_pyav_reader_dropped_in_the_parent_does_not_hang_a_forked_worker(
    tmp_path: Path,
) -> None:
    """A reader left mid-decode and dropped unclosed is freed at once, not by a later garbage
    collection in a forked loader worker, where freeing FFmpeg's threaded contexts deadlocks
    (caught: the running decoder as a method generator, a reference cycle through the reader)."""
    video = write_video(tmp_path / "clip.mp4", counter_frames(40))
    reader = PyAVReader(str(video))
    reader.read(range(5))  # the decoder stays open for a following read
    del reader
    child = multiprocessing.get_context("fork").Process(target=_collect_garbage_and_exit)
    child.start()
    child.join(timeout=20)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung and child.exitcode == 0


def test_a_sweep_during_a_long_write_keeps_the_live_temporary_file(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    cache = FrameCache(folder, SIZE, chunk_mb=8 * 32 * 32 * 3 / 2**20)
    resize = cache._resize

    def resize_then_sweep_as_another_process(frames: np.ndarray) -> np.ndarray:
        old = time.time() - 2 * frame_cache.STALE_TEMP_S
        for temp in folder.glob(".tmp-*"):  # the write has run for longer than STALE_TEMP_S
            os.utime(temp, (old, old))
        FrameCache(folder, SIZE).evict()
        return resize(frames)

    cache._resize = resize_then_sweep_as_another_process
    assert cache.fill(counter_copies[0]).written
    assert cache.entry_path(counter_copies[0]).is_file()


def read_only_errors(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make `folder` behave as on a read-only file system: creating files and utime fail."""
    real_open = os.open

    def refusing_open(path: str | Path, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_CREAT and Path(path).parent == folder:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    def refusing_utime(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.setattr(os, "utime", refusing_utime)


def test_read_only_cache_reads_its_entries(
    counter_copies: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    FrameCache(tmp_path / "cache", SIZE).fill(counter_copies[0])
    cache = FrameCache(tmp_path / "cache", SIZE)
    read_only_errors(monkeypatch, cache.folder)
    with caplog.at_level(logging.WARNING, logger=frame_cache.__name__):
        for _ in range(2):
            reader = cache.open(counter_copies[0])
            assert np.array_equal(reader.read(range(40)), decoded_and_resized(counter_copies[0]))
            reader.close()
    assert len([r for r in caplog.records if "read-only" in r.getMessage()]) == 1


def test_read_only_cache_decodes_misses_without_caching_and_says_so_once(
    counter_copies: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = FrameCache(tmp_path / "cache", SIZE)
    read_only_errors(monkeypatch, cache.folder)
    with caplog.at_level(logging.WARNING, logger=frame_cache.__name__):
        for video in counter_copies:
            frames = cache.open(video).read([3, 1])
            assert np.array_equal(frames, decoded_and_resized(video)[[3, 1]])
    assert list(cache.folder.iterdir()) == []
    assert len([r for r in caplog.records if "read-only" in r.getMessage()]) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 555 folder regardless")
def test_cache_folder_without_write_permission_decodes_misses_without_caching(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o555)
    frames = FrameCache(folder, SIZE).open(counter_copies[0]).read([3, 1])
    assert np.array_equal(frames, decoded_and_resized(counter_copies[0])[[3, 1]])
    assert list(folder.iterdir()) == []


def test_entry_evicted_right_after_its_write_is_still_read(
    counter_copies: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def replace_then_evict_as_another_process(source: str | Path, target: str | Path) -> None:
        real_replace(source, target)
        os.unlink(target)

    monkeypatch.setattr(os, "replace", replace_then_evict_as_another_process)
    frames = FrameCache(tmp_path / "cache", SIZE).open(counter_copies[0]).read(range(40))
    assert np.array_equal(frames, decoded_and_resized(counter_copies[0]))


def _fill_as_loader_worker(folder: Path, video: Path, seconds_per_chunk: float) -> None:
    """Fill in chunks of 8 frames, each taking `seconds_per_chunk`, as a DataLoader worker."""
    frame_cache._in_loader_worker = lambda: True
    cache = FrameCache(folder, SIZE, chunk_mb=8 * 32 * 32 * 3 / 2**20, stall_s=0.5)
    resize = cache._resize

    def slow_resize(frames: np.ndarray) -> np.ndarray:
        time.sleep(seconds_per_chunk)
        return resize(frames)

    cache._resize = slow_resize
    cache.fill(video)


def _exit_code_of_fill(folder: Path, video: Path, seconds_per_chunk: float) -> int | None:
    context = multiprocessing.get_context("fork")
    writer = context.Process(target=_fill_as_loader_worker, args=(folder, video, seconds_per_chunk))
    writer.start()
    writer.join(30)
    return writer.exitcode


def test_loader_worker_whose_write_makes_no_progress_ends_itself(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    exit_code = _exit_code_of_fill(tmp_path / "cache", counter_copies[0], 60.0)
    assert exit_code == frame_cache.STALLED_EXIT


def test_loader_worker_whose_slow_write_makes_progress_finishes_it(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    # 5 chunks of 0.3 s: the whole write (1.5 s) is longer than stall_s (0.5 s), no chunk is.
    assert _exit_code_of_fill(tmp_path / "cache", counter_copies[0], 0.3) == 0
    assert FrameCache(tmp_path / "cache", SIZE).entry_path(counter_copies[0]).is_file()


def _fill_as_loader_worker_whose_open_hangs(folder: Path, video: Path) -> None:
    frame_cache._in_loader_worker = lambda: True

    def hanging_open(*args: object, **kwargs: object) -> None:
        time.sleep(60)  # decord indexes the whole file when it opens it: a corrupt one can hang

    frame_cache.open_video = hanging_open
    FrameCache(folder, SIZE, stall_s=0.5).fill(video)


def test_loader_worker_whose_decoder_hangs_opening_the_video_ends_itself(
    counter_copies: list[Path], tmp_path: Path
) -> None:
    context = multiprocessing.get_context("fork")
    writer = context.Process(
        target=_fill_as_loader_worker_whose_open_hangs, args=(tmp_path / "cache", counter_copies[0])
    )
    writer.start()
    writer.join(10)
    if writer.exitcode is None:
        writer.kill()
        writer.join()
        pytest.fail("the worker was still waiting for the video to open after 10 s")
    assert writer.exitcode == frame_cache.STALLED_EXIT
