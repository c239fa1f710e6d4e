"""FrameCache prefix entries: a clip stores the frames up to its last one, later clips extend the
entry, and no reader ever gets a frame that was not written (killed writers, racing writers)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import tempfile
import threading
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from counter_videos import write_video
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data import frame_cache
from vidlearn.data.frame_cache import HEADER_BYTES, LOCK_NAME, TEMP_PREFIX, FrameCache
from vidlearn.data.transforms import resize
from vidlearn.data.video import open_video
from vidlearn.errors import ConfigError

SIZE = 16
FRAMES = 40
FRAME_BYTES = 32 * 32 * 3  # a decoded frame, for chunk sizes


def noise_frames() -> np.ndarray:
    """40 frames `(T, 32, 32, 3)` of noise on a ramp: a resize or a frame taken from the wrong
    place shows."""
    ramp = np.linspace(0, 150, 32)[None, :, None] + np.arange(FRAMES)[:, None, None, None] * 2
    noise = np.random.default_rng(1).integers(0, 40, (FRAMES, 32, 32, 3))
    return (ramp + noise).astype(np.uint8)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The noise frames, a keyframe every 10 frames."""
    return write_video(tmp_path_factory.mktemp("prefix") / "noise.mp4", noise_frames(), gop=10)


def uncached(path: Path, indices: list[int], backend: str = "decord") -> np.ndarray:
    """The frames at `indices` decoded without the cache, each resized as an entry holds it."""
    reader = open_video(path, backend)
    frames = reader.read(indices)
    reader.close()
    return np.stack([resize(frame, SIZE) for frame in frames])  # (T, SIZE, SIZE, 3)


def stored(cache: FrameCache, path: Path) -> int:
    """Frames the entry of `path` records, checking that its length matches them."""
    entry = cache.entry_path(path)
    data = entry.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[4:8], "little")])
    assert len(data) == HEADER_BYTES + int(np.prod(header["shape"]))
    return header["shape"][0]


class RecordingReader:
    """A decoder that records the frame indices of each read (no reference cycle: a reader left
    for the garbage collector could be freed in a forked child, where decord deadlocks)."""

    def __init__(self, reader: object, reads: list[list[int]]) -> None:
        self.reader, self.reads = reader, reads
        self.num_frames, self.fps = reader.num_frames, reader.fps

    def read(self, indices: list[int]) -> np.ndarray:
        self.reads.append(list(indices))
        return self.reader.read(indices)

    def close(self) -> None:
        self.reader.close()


def decoded_indices(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The frame indices each read of a decoder the cache opens asks for, from now on."""
    reads: list[list[int]] = []

    def recording_open(path: str, backend: str = "decord", threads: int = 1) -> RecordingReader:
        return RecordingReader(open_video(path, backend, threads), reads)

    monkeypatch.setattr(frame_cache, "open_video", recording_open)
    return reads


def read_once(cache: FrameCache, path: Path, indices: list[int]) -> np.ndarray:
    """Open `path` through `cache`, read `indices`, close the reader."""
    reader = cache.open(path)
    try:
        return reader.read(indices)
    finally:
        reader.close()


def test_a_first_clip_stores_the_frames_up_to_its_last_one(video: Path, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path, SIZE)
    reader = cache.open(video)
    assert np.array_equal(reader.read([3, 5]), uncached(video, [3, 5]))
    reader.close()
    assert reader.num_frames == FRAMES and stored(cache, video) == 6


def test_a_clip_inside_the_stored_prefix_decodes_nothing(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_once(FrameCache(tmp_path, SIZE), video, [10])
    reads = decoded_indices(monkeypatch)
    frames = read_once(FrameCache(tmp_path, SIZE), video, [9, 2])  # another process's cache
    assert reads == [] and np.array_equal(frames, uncached(video, [9, 2]))


def test_a_clip_past_the_prefix_decodes_only_the_missing_frames_and_extends_the_entry(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FrameCache(tmp_path, SIZE)
    read_once(cache, video, [9])
    reads = decoded_indices(monkeypatch)
    frames = read_once(FrameCache(tmp_path, SIZE), video, [20, 4])
    assert sorted(i for read in reads for i in read) == list(range(10, 21))
    assert np.array_equal(frames, uncached(video, [20, 4])) and stored(cache, video) == 21


def test_fill_completes_a_prefix_and_then_has_nothing_to_do(video: Path, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path, SIZE)
    read_once(cache, video, [7])
    assert cache.fill(video).written and stored(cache, video) == FRAMES
    assert not cache.fill(video).written
    every = list(range(FRAMES))
    assert np.array_equal(
        read_once(FrameCache(tmp_path, SIZE), video, every), uncached(video, every)
    )


def test_a_shorter_extension_does_not_replace_a_longer_entry(video: Path, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path, SIZE)
    read_once(cache, video, [4])
    short, long = cache.open(video), FrameCache(tmp_path, SIZE).open(video)  # both hold 5 frames
    long.read([30])
    assert np.array_equal(short.read([10, 0]), uncached(video, [10, 0]))
    short.close()
    long.close()
    assert stored(cache, video) == 31
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_a_video_replaced_after_its_reader_opened_is_stored_anew_not_after_its_old_prefix(
    tmp_path: Path,
) -> None:
    """Caught, when planted: an extension that copies the old prefix whatever the source."""
    video = write_video(tmp_path / "v.mp4", noise_frames(), gop=10)
    cache = FrameCache(tmp_path / "cache", SIZE)
    read_once(cache, video, [9])
    reader = cache.open(video)  # holds the 10-frame prefix of the first video
    write_video(tmp_path / "v.mp4", noise_frames()[::-1].copy(), gop=10)
    assert np.array_equal(reader.read([20, 2]), uncached(video, [20, 2]))
    reader.close()
    assert stored(cache, video) == 21


# -- killed writers ----------------------------------------------------------------------------
# Writing an extension from 10 to 30 frames in chunks of 4 makes these calls, in this order: the
# old prefix copied, 5 chunks of new frames, the header, the rename.
WRITE_STEPS = 8


def _extend_until_killed(folder: Path, video: Path, step: int) -> None:
    """Extend the entry from 10 to 30 frames and SIGKILL this process in write step `step`:
    half-way through that write (only half its bytes written), or right after the rename when
    `step` is WRITE_STEPS."""
    frame_cache.FIRST_CHUNK = 4  # this forked writer's own module
    cache = FrameCache(folder, SIZE, chunk_mb=4 * FRAME_BYTES / 2**20)
    done = [0]
    real_pwrite, real_replace = os.pwrite, os.replace

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def pwrite(descriptor: int, data: object, offset: int) -> int:
        if done[0] == step:
            view = memoryview(data).cast("B")
            real_pwrite(descriptor, view[: len(view) // 2], offset)
            die()
        done[0] += 1
        return real_pwrite(descriptor, data, offset)

    def replace(source: str | Path, target: str | Path) -> None:
        if done[0] == step:
            die()
        real_replace(source, target)
        if step == WRITE_STEPS:
            die()

    os.pwrite, os.replace = pwrite, replace
    read_once(cache, video, [29])
    os._exit(3)  # not killed: the test's step count is wrong


@pytest.mark.parametrize("step", range(WRITE_STEPS + 1))
def test_a_writer_killed_in_any_write_step_leaves_the_old_prefix_or_the_new_one(
    video: Path, tmp_path: Path, step: int
) -> None:
    """Caught, when planted: an entry renamed into place before its frames and header are
    written (a kill mid-write leaves an entry without a header)."""
    cache = FrameCache(tmp_path, SIZE)
    read_once(cache, video, [9])
    writer = multiprocessing.get_context("fork").Process(
        target=_extend_until_killed, args=(tmp_path, video, step)
    )
    writer.start()
    writer.join(60)
    assert writer.exitcode == -signal.SIGKILL
    assert stored(cache, video) == (30 if step == WRITE_STEPS else 10)
    every = list(range(FRAMES))
    assert np.array_equal(
        read_once(FrameCache(tmp_path, SIZE), video, every), uncached(video, every)
    )


# -- two processes ----------------------------------------------------------------------------
def _extend_together(folder: Path, video: Path, last: int, both_writing: object) -> None:
    """Extend the entry to `last + 1` frames, waiting mid-write until the other writer is too;
    exit 0 only when the frames read back are the uncached ones."""
    cache = FrameCache(folder, SIZE)
    resize_frames = cache._resize

    def resize_when_both_write(frames: np.ndarray) -> np.ndarray:
        both_writing.wait(30)
        return resize_frames(frames)

    cache._resize = resize_when_both_write
    frames = read_once(cache, video, [last, 0])
    cache._resize = resize_frames
    os._exit(0 if np.array_equal(frames, uncached(video, [last, 0])) else 1)


def test_two_processes_extending_one_entry_at_once_both_read_their_frames_and_leave_it_whole(
    video: Path, tmp_path: Path
) -> None:
    """Caught, when planted: both writers writing one shared temporary file without its lock."""
    read_once(FrameCache(tmp_path, SIZE), video, [4])
    context = multiprocessing.get_context("fork")
    both_writing = context.Barrier(2)
    writers = [
        context.Process(target=_extend_together, args=(tmp_path, video, last, both_writing))
        for last in (19, 34)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert [writer.exitcode for writer in writers] == [0, 0]
    cache = FrameCache(tmp_path, SIZE)
    assert stored(cache, video) in (20, 35)
    assert [p.name for p in tmp_path.iterdir() if p.name != LOCK_NAME] == [
        cache.entry_path(video).name
    ]
    every = list(range(FRAMES))
    assert np.array_equal(read_once(cache, video, every), uncached(video, every))


# -- any clips through a growing entry ----------------------------------------------------------
clips = st.lists(
    st.tuples(
        st.integers(0, FRAMES - 1),  # first frame
        st.integers(1, 8),  # length
        st.integers(1, 3),  # stride
        st.booleans(),  # read through a new FrameCache (another process's first look)
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=15, deadline=None)
@given(
    clips=clips,
    backend=st.sampled_from(["decord", "pyav"]),
    chunk_frames=st.integers(1, 12),
)
def test_every_clip_read_through_a_growing_entry_equals_its_uncached_decode(
    video: Path, clips: list[tuple[int, int, int, bool]], backend: str, chunk_frames: int
) -> None:
    """Caught, when planted: an extension that decodes from frame 0 instead of from the end of
    the stored prefix (frames appended in the wrong place), and one that copies the old prefix
    one frame short."""
    with (
        tempfile.TemporaryDirectory() as folder,
        mock.patch.object(frame_cache, "FIRST_CHUNK", chunk_frames),
    ):

        def new_cache() -> FrameCache:
            return FrameCache(folder, SIZE, backend, chunk_mb=chunk_frames * FRAME_BYTES / 2**20)

        cache = new_cache()
        for first, length, stride, fresh in clips:
            indices = [min(first + i * stride, FRAMES - 1) for i in range(length)]
            reader = (new_cache() if fresh else cache).open(video)
            assert np.array_equal(reader.read(indices), uncached(video, indices, backend))
            reader.close()
        longest = max(min(f + (n - 1) * s, FRAMES - 1) for f, n, s, _ in clips) + 1
        assert stored(cache, video) == longest


def test_a_read_only_cache_reads_its_prefix_and_decodes_the_rest_without_storing_it(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_once(FrameCache(tmp_path, SIZE), video, [5])
    cache = FrameCache(tmp_path, SIZE)
    cache._go_read_only(OSError(30, "Read-only file system"))
    reads = decoded_indices(monkeypatch)
    assert np.array_equal(read_once(cache, video, [25, 3]), uncached(video, [25, 3]))
    assert sorted(i for read in reads for i in read) == list(range(6, 26))
    assert stored(cache, video) == 6


def test_reader_is_a_video_reader_of_the_whole_video(video: Path, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path, SIZE)
    read_once(cache, video, [2])
    reader = FrameCache(tmp_path, SIZE).open(video)
    reader.close()
    assert (reader.num_frames, reader.fps, reader.height, reader.width) == (FRAMES, 10.0, 16, 16)


def test_filling_a_prefix_in_a_read_only_cache_is_a_config_error_naming_the_folder(
    video: Path, tmp_path: Path
) -> None:
    read_once(FrameCache(tmp_path, SIZE), video, [5])
    cache = FrameCache(tmp_path, SIZE)
    cache._go_read_only(OSError(30, "Read-only file system"))
    with pytest.raises(ConfigError, match=f"frame cache {tmp_path} is read-only"):
        cache.fill(video)
    assert stored(cache, video) == 6


def test_filling_a_whole_entry_in_a_read_only_cache_has_nothing_to_do(
    video: Path, tmp_path: Path
) -> None:
    FrameCache(tmp_path, SIZE).fill(video)
    cache = FrameCache(tmp_path, SIZE)
    cache._go_read_only(OSError(30, "Read-only file system"))
    assert not cache.fill(video).written


def test_a_video_replaced_by_a_longer_one_after_its_reader_opened_records_the_new_length(
    tmp_path: Path,
) -> None:
    """Caught, before the fix: the extension recorded the old video's frame count (40) with the
    new video's frames, so later readers and `fill` never saw the new video's last 20 frames."""
    video = write_video(tmp_path / "v.mp4", noise_frames(), gop=10)
    cache = FrameCache(tmp_path / "cache", SIZE)
    read_once(cache, video, [9])
    reader = cache.open(video)  # holds the 10-frame prefix of the 40-frame video
    longer = np.concatenate([noise_frames()[::-1], noise_frames()[:20]])  # 60 frames
    write_video(tmp_path / "v.mp4", longer, gop=10)
    reader.read([20])
    reader.close()
    later = FrameCache(tmp_path / "cache", SIZE).open(video)
    later.close()
    assert later.num_frames == 60


def test_a_longer_entry_written_between_the_check_and_the_rename_is_not_replaced(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caught, before the fix: another writer's 31-frame entry renamed into place after this
    writer checked the entry (5 frames, shorter than its 11) and before its own rename was
    replaced by the 11-frame one."""
    read_once(FrameCache(tmp_path, SIZE), video, [4])
    short, long = FrameCache(tmp_path, SIZE), FrameCache(tmp_path, SIZE)
    check = FrameCache._holds
    others: list[threading.Thread] = []

    def holds_then_other_writes(self: FrameCache, *args: object) -> bool:
        held = check(self, *args)
        if self is short:  # the other writer runs in this window
            others.append(threading.Thread(target=read_once, args=(long, video, [30])))
            others[0].start()
            others[0].join(timeout=1.0)  # it finishes, or waits for this writer's rename
        return held

    monkeypatch.setattr(FrameCache, "_holds", holds_then_other_writes)
    assert np.array_equal(read_once(short, video, [10]), uncached(video, [10]))
    others[0].join()
    assert stored(short, video) == 31


def test_a_write_that_yields_to_a_longer_entry_adds_nothing_to_the_budget_estimate(
    video: Path, tmp_path: Path
) -> None:
    """Caught, before the fix: the discarded copy's bytes were counted as written, so the
    writer rescanned the folder for a budget it had not used."""
    read_once(FrameCache(tmp_path, SIZE), video, [4])
    short, long = FrameCache(tmp_path, SIZE, max_gb=1.0), FrameCache(tmp_path, SIZE)
    reader = short.open(video)  # holds the 5-frame prefix
    read_once(short, video, [6])  # short has scanned the folder: it now counts its writes
    read_once(long, video, [30])
    estimate = short._estimate
    reader.read([10])  # 11 frames: the 31-frame entry stays, this copy is dropped
    reader.close()
    assert stored(short, video) == 31 and short._estimate == estimate


@settings(max_examples=10, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(10, 50), st.integers(0, 49), st.booleans()), min_size=2, max_size=4
    )
)
def test_a_source_replaced_by_a_video_of_any_length_is_read_as_the_new_video(
    steps: list[tuple[int, int, bool]],
) -> None:
    """Each step writes a video of `length` frames over the source (or, with the flag False,
    keeps it), reads frame `last` (clamped below both lengths) through a reader opened before
    the replacement, then the last frame through a new reader. Caught, when planted: the
    extension after a replacement keeping the old video's frame count (the reader opened after
    it saw the old length)."""
    frames = np.concatenate([noise_frames(), noise_frames()[::-1]])  # 80 frames
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "v.mp4"
        write_video(video, frames[:FRAMES], gop=10)
        cache = FrameCache(Path(folder) / "cache", SIZE)
        read_once(cache, video, [5])
        for number, (length, last, replace) in enumerate(steps):
            reader = cache.open(video)  # opened before the replacement
            if replace:
                write_video(video, frames[number : number + length].copy(), gop=10)
                os.utime(video, ns=(0, number + 1))  # a new stamp even within the mtime's tick
            current = open_video(video).num_frames
            index = min(last, current - 1, reader.num_frames - 1)
            reader.read([index])  # old frames inside its prefix (its snapshot), else new ones
            reader.close()
            later = cache.open(video)
            assert later.num_frames == current
            assert np.array_equal(later.read([current - 1]), uncached(video, [current - 1]))
            later.close()
