"""FrameCache under random interleavings of fills, reads, evictions, killed writers and damaged
entries across two processes: every read returns exactly the source's frames at those indices."""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from counter_videos import counter_frames, write_video
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vidlearn.data import frame_cache
from vidlearn.data.frame_cache import HEADER_BYTES, TEMP_PREFIX, CachedVideo, FrameCache
from vidlearn.data.transforms import resize
from vidlearn.data.video import open_video

SIZE = 16
FRAMES = 8
FRAME_BYTES = 32 * 32 * 3  # a decoded frame, for chunk sizes


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, np.ndarray]:
    """Two 8-frame 32x32 videos and what their entries must hold: every frame, resized."""
    root = tmp_path_factory.mktemp("property_videos")
    textured = counter_frames(FRAMES) + np.arange(32, dtype=np.uint8)[None, None, :, None]
    paths = [
        write_video(root / "a.mp4", textured),
        write_video(root / "b.mp4", textured[::-1].copy()),
    ]
    expected = {}
    for path in paths:
        reader = open_video(path)
        expected[path] = np.stack([resize(f, SIZE) for f in reader.read(range(FRAMES))])
        reader.close()
    return expected


def _fill(folder: Path, video: Path) -> None:
    FrameCache(folder, SIZE).fill(video)


def _fill_until_killed(folder: Path, video: Path, chunks: int, stalled: object) -> None:
    """Write the entry anew in 2-frame chunks; after `chunks` of them, say so and wait to be
    killed (a writer that started before another process's entry appeared)."""
    frame_cache.FIRST_CHUNK = 2  # this forked writer's own module
    cache = FrameCache(folder, SIZE, chunk_mb=2 * FRAME_BYTES / 2**20)
    resize_chunk, done = cache._resize, [0]

    def resize_then_stall(frames: np.ndarray) -> np.ndarray:
        if done[0] == chunks:
            stalled.set()
            time.sleep(60)
        done[0] += 1
        return resize_chunk(frames)

    cache._resize = resize_then_stall
    CachedVideo(cache, str(video), cache.backend, None).grow(FRAMES)


def _replace_entry(entry: Path, data: bytes) -> None:
    """Put `data` in place of the entry as a crash after the rename would (a new file)."""
    damaged = entry.with_name(entry.name + ".damaged")
    damaged.write_bytes(data)
    os.replace(damaged, entry)


video_choice = st.integers(0, 1)
indices = st.lists(st.integers(0, FRAMES - 1), min_size=1, max_size=6)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("read"), video_choice, indices),
        st.tuples(st.just("read_fresh"), video_choice, indices),
        st.tuples(st.just("hold"), video_choice, indices),
        st.tuples(st.just("read_held"), st.integers(0, 7), indices),
        st.tuples(st.just("fill_racing_read"), video_choice, indices),
        st.tuples(st.just("kill_writer"), video_choice, st.integers(0, 3)),
        st.tuples(st.just("evict"), video_choice, st.just(0)),
        st.tuples(st.just("truncate"), video_choice, st.integers(0, HEADER_BYTES + 3000)),
        st.tuples(st.just("flip_byte"), video_choice, st.integers(0, FRAMES * SIZE * SIZE * 3)),
        st.tuples(st.just("dead_temp"), video_choice, st.integers(0, HEADER_BYTES + 3000)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=20)
@given(steps=operations)
@example(steps=[("read", 0, [1]), ("flip_byte", 0, 5), ("read", 0, [0])])
@example(steps=[("kill_writer", 1, 2), ("truncate", 1, HEADER_BYTES + 100), ("hold", 1, [7])])
def test_every_read_returns_the_sources_frames_whatever_happened_before(
    videos: dict[Path, np.ndarray], steps: list[tuple]
) -> None:
    """Caught, when planted: the checksum check skipped (a flipped byte is read as a frame), and
    verified entries remembered by name instead of (name, inode, mtime) (an entry replaced after
    its check is not checked again). The length check alone is not caught: the checksum
    rejects a truncated entry too."""
    context = multiprocessing.get_context("fork")
    paths = list(videos)
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root)
        cache = FrameCache(folder, SIZE)
        for video in paths:  # start from a filled cache, so damage has entries to hit
            cache.fill(video)
        held = []

        def check(frames: np.ndarray, video: Path, wanted: list[int]) -> None:
            assert np.array_equal(frames, videos[video][wanted])

        for name, choice, argument in steps:
            video = paths[choice % len(paths)]
            entry = cache.entry_path(video)
            if name == "read":
                reader = cache.open(video)
                check(reader.read(argument), video, argument)
                reader.close()
            elif name == "read_fresh":  # another process's first look at the folder
                reader = FrameCache(folder, SIZE).open(video)
                check(reader.read(argument), video, argument)
                reader.close()
            elif name == "hold":
                held.append((cache.open(video), video))
                check(held[-1][0].read(argument), video, argument)
            elif name == "read_held" and held:
                reader, held_video = held[choice % len(held)]
                check(reader.read(argument), held_video, argument)
            elif name == "fill_racing_read":
                writer = context.Process(target=_fill, args=(folder, video))
                writer.start()
                reader = cache.open(video)
                check(reader.read(argument), video, argument)
                reader.close()
                writer.join(30)
                assert writer.exitcode == 0
            elif name == "kill_writer":
                stalled = context.Event()
                writer = context.Process(
                    target=_fill_until_killed, args=(folder, video, argument, stalled)
                )
                writer.start()
                assert stalled.wait(30)
                os.kill(writer.pid, signal.SIGKILL)
                writer.join(10)
            elif name == "evict":  # another process with a budget of about one entry
                FrameCache(folder, SIZE, max_gb=(HEADER_BYTES + 4000) / 1e9).evict()
            elif name == "truncate" and entry.exists():
                _replace_entry(entry, entry.read_bytes()[:argument])
            elif name == "flip_byte" and entry.exists():
                data = bytearray(entry.read_bytes())
                data[HEADER_BYTES + argument % (len(data) - HEADER_BYTES)] ^= 0xFF
                _replace_entry(entry, bytes(data))
            elif name == "dead_temp" and entry.exists():
                dead = folder / f"{TEMP_PREFIX}{entry.stem}-1-deadbeef"
                dead.write_bytes(entry.read_bytes()[:argument])
                old = time.time() - 3600
                os.utime(dead, (old, old))
        every = list(range(FRAMES))
        for reader, held_video in held:
            check(reader.read(every), held_video, every)
            reader.close()
        for video in paths:  # and afterwards, in this process and in a new one
            for reader in (cache.open(video), FrameCache(folder, SIZE).open(video)):
                check(reader.read(every), video, every)
                reader.close()
