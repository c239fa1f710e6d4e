"""Decode each video once: its frames, resized to `size x size`, stored as one memory-mapped file.

`FrameCache(folder, size).open(path)` returns a reader with the `open_video` contract whose
`read(indices)` is a slice of a uint8 memory map `(T, size, size, C)` of frames resized as
`ClipTransform`'s own function resizes them (`vidlearn.data.transforms.resize`'s OpenCV call, so
the pipeline's resize of a cached clip is a no-op); every clip of stored frames, in any process,
costs a slice instead of a decode from the last keyframe. `.npy`/`.npz` arrays are not cached:
they are memory-mapped already.

An entry holds a prefix of the video, frames `0 .. stored - 1`, and grows as clips reach past it:
a read beyond the prefix decodes only the missing frames, from the end of the prefix up to the
clip's last frame (which an uncached read decodes too: a decoder runs from the keyframe before
a clip to its end), resizes them once and stores the longer prefix. So the first epoch with the
cache decodes what an uncached epoch decodes, not every frame of every video; `fill` (the
`vidlearn-cache` CLI) stores whole videos.

One entry per (absolute path, backend, size): `<folder>/<key>.frames`, a 4096-byte JSON header
(the video's frame count and fps, the prefix's shape, the source file's size and mtime, a CRC-32
of the stored frames) followed by the raw frames. Every write, the first and each extension, goes
to a temporary file in the same folder, which the writer holds an `fcntl` lock on: the old
prefix copied, the new frames appended, the header last, then renamed into place
(`os.replace`, under the folder's `.lock`, so no other writer's rename slips between the check
of the entry and it). A reader therefore sees a whole prefix with its length recorded, or no entry:
never frames that were not written. A killed writer leaves the previous entry (or none) and a
temporary file; two processes extending one entry both leave a whole one, and a writer does not
replace an entry that already holds at least as many frames as its own. The writer reads what
it wrote through its own map, even when another process evicts the entry at once.
An entry whose source changed (size or mtime), whose length is wrong or whose checksum fails
(checked once per process and entry) is rebuilt, never trusted. With `max_gb`, the least
recently used entries are deleted when the folder may be over budget (see `_account`: a fill
is O(N), not a folder scan per write). A read-only folder is read; what it lacks is decoded
and resized without caching, with one warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import mmap
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch.utils.data

from vidlearn.data.video import (
    ARRAY_EXTENSIONS,
    DecodeError,
    VideoReader,
    check_indices,
    open_video,
)
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 3: entries hold a prefix; the header records the video's frame count
MAGIC = b"VLFC"
HEADER_BYTES = 4096  # frames start page-aligned after the header
SUFFIX = ".frames"
TEMP_PREFIX = ".tmp-"
LOCK_NAME = ".lock"  # writers hold it from checking an entry to renaming theirs over it
# A temporary file untouched this long whose lock no writer holds belongs to a writer that died.
STALE_TEMP_S = 600.0
RESCAN_SHARE = 0.1  # a writer rescans the folder after writing this share of the budget
LOW_WATER = 0.9  # eviction brings the folder down to this share of the budget
STALLED_EXIT = 75  # exit status of a loader worker whose cache write stopped making progress
FIRST_CHUNK = 8  # frames decoded before a frame's size is known and `chunk_mb` can be applied


@dataclass(frozen=True)
class FillResult:
    """What `FrameCache.fill` did for one video: `written` False when a valid entry existed."""

    path: str
    num_frames: int
    nbytes: int
    written: bool


class CachedVideo:
    """A video read through its cache entry as a `VideoReader`: frames `(T, size, size, C)` uint8.

    The entry may hold a prefix only (`stored` frames): a read that reaches past it has the
    cache decode the missing frames and store the longer prefix, then slices that. In a
    read-only cache the longer prefix is kept in memory instead.
    """

    def __init__(
        self,
        cache: FrameCache,
        path: str,
        backend: str,
        found: tuple[dict, mmap.mmap] | None,
        threads: int = 1,
    ) -> None:
        self.path, self._cache, self._backend, self._threads = path, cache, backend, threads
        self._decoder: VideoReader | None = None
        self._source: os.stat_result | None = None  # the source as the decoder opened it
        self._header: dict | None = None
        self._mapped: mmap.mmap | None = None
        self.height = self.width = cache.size
        self._release()  # no frames yet
        if found is None:  # a miss: the decoder says how long the video is
            self._open_decoder()
            self.num_frames, self.fps = self._decoder.num_frames, float(self._decoder.fps)
            if self.num_frames < 1:
                self.close()
                raise DecodeError(
                    f"{path}: the video has no frames; re-export it or remove its row"
                )
        else:
            self._use(*found)
            self.num_frames, self.fps = int(found[0]["num_frames"]), float(found[0]["fps"])

    @property
    def stored(self) -> int:
        """Frames `0 .. stored - 1` are in the entry (or in memory, in a read-only cache)."""
        return len(self.frames)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = check_indices(self.path, indices, self.num_frames)
        needed = int(wanted.max()) + 1
        if needed > self.stored:
            self.grow(needed)
        return self.frames[wanted]  # (T, size, size, C): a copy of only these frames' pages

    def grow(self, stop: int) -> None:
        """Decode frames `stored .. stop - 1`, resize them and store the prefix `0 .. stop - 1`."""
        if self._decoder is None:
            self._open_decoder()
        if self._header is not None and self._header["source"] != _stamp(self.path, self._source):
            # The video changed since its entry was checked: store it anew, with its own length.
            self._release()
            self.num_frames, self.fps = self._decoder.num_frames, float(self._decoder.fps)
        old = None if self._header is None else (self._header, self._mapped)
        written = None
        if not self._cache.read_only:
            written = self._cache._write(
                self.path, self._decoder, self._source, old, stop, (self.num_frames, self.fps)
            )
        if written is None:  # a read-only cache: the longer prefix lives in this reader only
            new = list(self._cache._decoded(self.path, self._decoder, self.stored, stop))
            frames = np.concatenate([self.frames, *new] if self.stored else new)
            self._release()
            self.frames = frames
            return
        self._release()
        self._use(*written)

    def _open_decoder(self) -> None:
        self._source = os.stat(self.path)  # before decoding: a change meanwhile shows later
        with _stall_guard(self.path, self._cache.stall_s):  # opening can hang (decord indexes)
            self._decoder = open_video(self.path, self._backend, self._threads)

    def _use(self, header: dict, mapped: mmap.mmap) -> None:
        shape = tuple(header["shape"])
        self._header, self._mapped = header, mapped
        self.frames = np.frombuffer(
            mapped, dtype=np.uint8, count=int(np.prod(shape)), offset=HEADER_BYTES
        ).reshape(shape)

    def _release(self) -> None:
        # no frames: drops the view of the map's buffer, so the map can close
        self.frames = np.empty((0, self.height, self.width, 0), dtype=np.uint8)
        if self._mapped is not None:
            self._mapped.close()
        self._header = self._mapped = None

    def close(self) -> None:
        self._release()
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None


class FrameCache:
    """Frames of each video decoded once, resized to `size x size`, kept in `folder`.

    `backend` decodes on a miss (as `open_video`); frames are resized as the training
    pipeline's own `resize` resizes them. `max_gb` bounds the folder (None = unbounded);
    `chunk_mb` bounds the decoded frames held in memory while an entry is written (8 MB: chunks
    that stay in the CPU's cache decoded and resized 320x240 frames faster than chunks of 150
    frames here).

    A write in a DataLoader worker may take longer than a batch is allowed to (a long video),
    so the DataModule turns the loader's per-batch timeout off when the cache is on and passes
    it here as `stall_s`: a worker whose write decodes no frames for `stall_s` seconds logs the
    video and ends, which fails the run as the timeout did, while a slow write that makes
    progress is never cut short.
    """

    def __init__(
        self,
        folder: str | Path,
        size: int,
        backend: str = "decord",
        max_gb: float | None = None,
        chunk_mb: float = 8.0,
        stall_s: float | None = None,
    ) -> None:
        if size < 1:
            raise ConfigError(f"data.size={size}: the frame cache needs a size >= 1")
        if max_gb is not None and max_gb <= 0:
            raise ConfigError(
                f"data.frame_cache_max_gb={max_gb}: give a positive size in GB, or null for no limit"
            )
        self.folder = Path(folder).expanduser()
        self.size, self.backend = size, backend
        self.max_bytes = None if max_gb is None else int(max_gb * 1e9)
        self.chunk_bytes = int(chunk_mb * 2**20)
        self.stall_s = stall_s
        self.folder.mkdir(parents=True, exist_ok=True)
        # Entries whose checksum this process has verified, by (file, inode, mtime): a replaced
        # entry has a new inode and is verified again. Forked workers inherit the verified set.
        self._verified: set[tuple[str, int, int]] = set()
        # Bytes in the folder as of this process's last scan plus its writes since (see _account).
        self._scanned_by: int | None = None
        self._estimate = self._since_scan = 0
        self.read_only, self._touches = False, True
        if not os.access(self.folder, os.W_OK):  # a read-only mount, or no write permission
            self._go_read_only(PermissionError(errno.EACCES, "no write permission"))

    # -- reading -------------------------------------------------------------------------------
    def open(self, path: str | Path, backend: str | None = None, threads: int = 1) -> VideoReader:
        """A reader of `path`'s cached frames; reads past the stored prefix decode and store.

        `backend` decodes this file instead of the cache's own (the probe's per-file choice
        under backend=auto); the entry stays keyed by the cache's settings; `threads`: the
        decoder's threads for what the entry lacks (data.decoder_threads). In a read-only cache
        what the entry lacks is decoded and resized into the reader's memory, not stored.
        """
        path = str(path)
        backend = backend or self.backend
        if path.lower().endswith(ARRAY_EXTENSIONS):
            return open_video(path, backend)
        found = self._map_valid(path, self.entry_path(path))
        return CachedVideo(self, path, backend, found, threads)

    def fill(self, path: str | Path, backend: str | None = None) -> FillResult:
        """Make sure `path` has an entry of every frame (decoding what is missing with
        `backend`, default the cache's); arrays are skipped."""
        path = str(path)
        if path.lower().endswith(ARRAY_EXTENSIONS):
            return FillResult(path, 0, 0, False)
        found = self._map_valid(path, self.entry_path(path))
        whole = found is not None and found[0]["shape"][0] == found[0]["num_frames"]
        if not whole and self.read_only:
            if found is not None:
                found[1].close()
            raise self._cannot_fill()
        reader = CachedVideo(self, path, backend or self.backend, found)
        try:
            if not whole:
                reader.grow(reader.num_frames)
                if self.read_only:  # it turned out read-only while writing
                    raise self._cannot_fill()
            return FillResult(path, reader.num_frames, reader.frames.nbytes, not whole)
        finally:
            reader.close()

    def _cannot_fill(self) -> ConfigError:
        return ConfigError(
            f"frame cache {self.folder} is read-only: give a writable data.frame_cache to fill"
        )

    def entry_path(self, path: str | Path) -> Path:
        """The entry file of `path` under the current decode and resize settings."""
        settings = json.dumps([FORMAT_VERSION, os.path.abspath(path), *self._settings()])
        return self.folder / (hashlib.sha256(settings.encode()).hexdigest()[:32] + SUFFIX)

    def _settings(self) -> list:
        return [self.backend, self.size]

    def _map_valid(self, path: str, entry: Path) -> tuple[dict, mmap.mmap] | None:
        """(header, memory map) of the entry when it is whole, current and verified, else None.

        The checks and the map use one file descriptor, so a concurrent replace cannot slip a
        different file between them. Each use stamps the entry's access time (for eviction).
        """
        try:
            source = os.stat(path)
        except FileNotFoundError as error:
            raise DecodeError(
                f"{path}: file not found; fix the manifest row or restore the file"
            ) from error
        try:
            descriptor = os.open(entry, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            stat = os.fstat(descriptor)
            header = _parse_header(os.pread(descriptor, HEADER_BYTES, 0))
            if header is not None and header["source"] != _stamp(path, source):
                logger.info("%s changed since it was cached; rebuilding %s", path, entry)
                return None
            problem = self._problem(header, stat)
            if problem is not None:
                logger.warning("%s: %s; rebuilding it", entry, problem)
                return None
            mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
            identity = (str(entry), stat.st_ino, stat.st_mtime_ns)
            if identity not in self._verified:
                if zlib.crc32(memoryview(mapped)[HEADER_BYTES:]) != header["crc32"]:
                    mapped.close()
                    logger.warning("%s: checksum mismatch (corrupt); rebuilding it", entry)
                    return None
                self._verified.add(identity)
            self._touch(descriptor, stat)
            return header, mapped
        finally:
            os.close(descriptor)  # the map keeps its own reference to the file

    def _problem(self, header: dict | None, stat: os.stat_result) -> str | None:
        """Why an entry with `header` and `stat` cannot be read (its source and checksum
        aside), or None."""
        if header is None:
            return "unreadable frame cache header"
        if header["settings"] != self._settings():
            return "written with other settings"
        if not 1 <= header["shape"][0] <= header["num_frames"]:
            return "a prefix longer than its video"
        expected = HEADER_BYTES + int(np.prod(header["shape"]))
        if stat.st_size != expected:
            return f"{stat.st_size} bytes instead of {expected} (truncated)"
        return None

    def _touch(self, descriptor: int, stat: os.stat_result) -> None:
        """Record a use (access time) for least-recently-used eviction; the mtime is kept."""
        if not self._touches:
            return
        try:
            os.utime(descriptor, ns=(time.time_ns(), stat.st_mtime_ns))
        except OSError as error:
            if error.errno == errno.EROFS:
                self._go_read_only(error)
            else:  # EPERM: another user's entry; it is still read, only its use goes unrecorded
                self._touches = False
                logger.warning(
                    "frame cache %s: cannot record which entries are used (%s); eviction by "
                    "this process falls back to the order others recorded",
                    self.folder,
                    error.strerror,
                )

    def _go_read_only(self, error: OSError) -> None:
        """Stop writing and touching entries, and say so once per process."""
        if not self.read_only:
            logger.warning(
                "frame cache %s is read-only (%s): its entries are read, misses are decoded "
                "without caching",
                self.folder,
                error.strerror,
            )
        self.read_only, self._touches = True, False

    # -- writing -------------------------------------------------------------------------------
    def _write(
        self,
        path: str,
        decoder: VideoReader,
        source: os.stat_result,
        old: tuple[dict, mmap.mmap] | None,
        stop: int,
        video: tuple[int, float],
    ) -> tuple[dict, mmap.mmap] | None:
        """Store frames `0 .. stop - 1` of `path`: the `old` prefix copied, the rest decoded.

        `video` is the video's (frame count, fps), as its readers report them.

        Written to a locked temporary file, header last, then renamed over the entry unless the
        entry meanwhile holds at least `stop` frames of this source (another writer's). Returns
        the header and a map of what was written: the caller reads it even when another process
        evicts the entry at once. None when the folder turns out read-only.
        """
        entry = self.entry_path(path)
        temp = self.folder / f"{TEMP_PREFIX}{entry.stem}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            descriptor = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as error:
            if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            self._go_read_only(error)
            return None
        mapped = None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # a sweep skips temporary files held so
            header = self._store(path, decoder, descriptor, old, stop)
            header.update(source=_stamp(path, source), num_frames=video[0], fps=video[1])
            os.pwrite(descriptor, _format_header(header), 0)
            mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
            stat = os.fstat(descriptor)
            # No fsync: a crash that loses the data but keeps the rename leaves an entry that
            # fails its length or checksum check, and is rebuilt.
            with _locked(self.folder / LOCK_NAME):  # no other rename between check and ours
                replaced = not self._holds(entry, header["source"], stop)
                if replaced:
                    os.replace(temp, entry)
                else:
                    temp.unlink()  # another writer got as far: keep its entry, read our copy
        except BaseException:
            if mapped is not None:
                mapped.close()
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        finally:
            os.close(descriptor)  # releases the lock
        if replaced:  # a dropped copy is neither the entry nor in the folder
            self._verified.add((str(entry), stat.st_ino, stat.st_mtime_ns))
            self._account(entry, stat.st_size - (0 if old is None else len(old[1])))
        return header, mapped

    def _holds(self, entry: Path, source: list, stop: int) -> bool:
        """Whether `entry` is a whole entry of `source` holding at least `stop` frames, with a
        matching checksum: another writer's, which a write of `stop` frames must not replace."""
        try:
            descriptor = os.open(entry, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            header = _parse_header(os.pread(descriptor, HEADER_BYTES, 0))
            if header is None or header["source"] != source or header["shape"][0] < stop:
                return False
            if self._problem(header, os.fstat(descriptor)) is not None:
                return False
            with mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ) as mapped:
                return zlib.crc32(mapped[HEADER_BYTES:]) == header["crc32"]  # a rare race: copied
        finally:
            os.close(descriptor)

    def _store(
        self,
        path: str,
        decoder: VideoReader,
        descriptor: int,
        old: tuple[dict, mmap.mmap] | None,
        stop: int,
    ) -> dict:
        """Write the old prefix, then frames up to `stop` decoded and resized, after the
        header's room; returns the header without the source."""
        crc, offset, start, channels = 0, HEADER_BYTES, 0, None
        if old is not None:  # verified when it was mapped; its checksum continues
            header, mapped = old
            start, channels, crc = header["shape"][0], header["shape"][3], header["crc32"]
            offset += _write_all(descriptor, memoryview(mapped)[HEADER_BYTES:], offset)
        for sized in self._decoded(path, decoder, start, stop):
            channels = sized.shape[-1]
            crc = zlib.crc32(sized, crc)
            offset += _write_all(descriptor, sized.data, offset)
        return {
            "version": FORMAT_VERSION,
            "settings": self._settings(),
            "shape": [stop, self.size, self.size, channels],
            "dtype": "uint8",
            "crc32": crc,
        }

    def _decoded(
        self, path: str, decoder: VideoReader, start: int, stop: int
    ) -> Iterator[np.ndarray]:
        """Frames `start .. stop - 1` decoded in order and resized, `(t, size, size, C)` chunks
        of at most `chunk_mb` decoded; in a loader worker, under the stall guard."""
        chunk = FIRST_CHUNK
        with _stall_guard(path, self.stall_s) as progress:
            while start < stop:
                # One decoder reads the chunks in order: each continues where the last stopped.
                frames = decoder.read(range(start, min(start + chunk, stop)))  # (t, H, W, C)
                progress()
                chunk = max(1, self.chunk_bytes // max(frames[0].nbytes, 1))
                start += len(frames)
                yield self._resize(frames)

    def _resize(self, frames: np.ndarray) -> np.ndarray:
        """`(t, H, W, 3)` -> `(t, size, size, 3)` uint8, each frame as ClipTransform's `resize`
        does it (the same OpenCV call), written into one array: the first epoch resizes every
        frame it stores, and the per-frame wrapper and a stack of the results cost a tenth of
        what decoding those frames does (measured on 320x240 frames)."""
        sized = np.empty((len(frames), self.size, self.size, frames.shape[-1]), dtype=np.uint8)
        for frame, out in zip(frames, sized, strict=True):
            cv2.resize(frame, (self.size, self.size), dst=out, interpolation=cv2.INTER_LINEAR)
        return sized

    # -- budget --------------------------------------------------------------------------------
    def _account(self, entry: Path, nbytes: int) -> None:
        """After a write: scan the folder only when it may be over budget, so a fill is O(N).

        Each process scans once (sweeping what killed writers left), then adds what it writes.
        Without a budget it never scans again. With one, it scans when its estimate passes the
        budget or when it wrote a tenth of the budget since its last scan: other processes
        write too, so the folder can exceed the budget by that tenth per writing process.
        """
        if self._scanned_by != os.getpid():
            self.evict(keep=entry)
            return
        if self.max_bytes is None:
            return
        self._estimate += nbytes
        self._since_scan += nbytes
        if self._estimate > self.max_bytes or self._since_scan > RESCAN_SHARE * self.max_bytes:
            self.evict(keep=entry)

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Over `max_gb`, delete least recently used entries down to LOW_WATER of it.

        Also deletes temporary files that no live writer holds and that are older than
        STALE_TEMP_S (a killed run's). Returns what it deleted.
        """
        entries, removed, now = [], [], time.time()
        for item in os.scandir(self.folder):
            try:
                stat = item.stat()
            except FileNotFoundError:  # evicted or renamed by another process meanwhile
                continue
            if item.name.startswith(TEMP_PREFIX):
                if now - stat.st_mtime > STALE_TEMP_S:
                    _unlink_unless_held(Path(item.path), removed)
            elif item.name.endswith(SUFFIX):
                entries.append((stat.st_atime, stat.st_size, Path(item.path)))
        total = sum(size for _, size, _ in entries)
        if self.max_bytes is not None and total > self.max_bytes:
            for _, size, entry in sorted(entries):
                if total <= LOW_WATER * self.max_bytes:
                    break
                if entry != keep:
                    _unlink(entry, removed)
                    total -= size
            if total > self.max_bytes:
                logger.warning(
                    "frame cache %s holds %.2f GB, over data.frame_cache_max_gb=%.2f: one entry "
                    "is larger than the budget; raise it",
                    self.folder,
                    total / 1e9,
                    self.max_bytes / 1e9,
                )
        self._scanned_by, self._estimate, self._since_scan = os.getpid(), total, 0
        return removed


def _stamp(path: str, source: os.stat_result) -> list:
    """What an entry records of its source file: absolute path, size and mtime."""
    return [os.path.abspath(path), source.st_size, source.st_mtime_ns]


def _format_header(header: dict) -> bytes:
    body = json.dumps(header).encode()
    if len(body) + 8 > HEADER_BYTES:
        raise DecodeError(f"{header['source'][0]}: path too long for a frame cache header")
    return (MAGIC + len(body).to_bytes(4, "little") + body).ljust(HEADER_BYTES, b" ")


def _parse_header(raw: bytes) -> dict | None:
    """The header dict, or None when the bytes are not a whole header of this format version."""
    if len(raw) < HEADER_BYTES or not raw.startswith(MAGIC):
        return None
    length = int.from_bytes(raw[4:8], "little")
    try:
        header = json.loads(raw[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict) or header.get("version") != FORMAT_VERSION:
        return None
    return header


def _unlink(path: Path, removed: list[Path]) -> None:
    with contextlib.suppress(FileNotFoundError):  # another process removed it first
        path.unlink()
        removed.append(path)


def _unlink_unless_held(temp: Path, removed: list[Path]) -> None:
    """Delete a temporary file unless a live writer holds its lock (a long write, not a dead one)."""
    try:
        descriptor = os.open(temp, os.O_RDONLY)
    except FileNotFoundError:  # renamed into place or removed meanwhile
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _unlink(temp, removed)
    except BlockingIOError:  # a live writer holds it
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created when missing; opened read-only when another
    user created it without write permission for this one)."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _write_all(descriptor: int, data: memoryview, offset: int) -> int:
    """pwrite all of `data` at `offset` (pwrite may write less); returns the bytes written."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(descriptor, view[done:], offset + done)
    return done


def _in_loader_worker() -> bool:
    return torch.utils.data.get_worker_info() is not None


@contextlib.contextmanager
def _stall_guard(path: str, stall_s: float | None) -> Iterator[Callable[[], None]]:
    """Yield `progress()`; in a DataLoader worker, end the process when it is not called for
    `stall_s` seconds (a hung decoder), as the loader timeout would have failed the run."""
    if stall_s is None or stall_s <= 0 or not _in_loader_worker():
        yield lambda: None
        return
    last, done = [time.monotonic()], threading.Event()

    def watch() -> None:
        while not done.wait(min(stall_s, 5.0) / 2):
            if time.monotonic() - last[0] > stall_s:
                logger.error(
                    "%s: no frame decoded for %.0f s while filling the frame cache; ending this "
                    "loader worker (data.timeout); re-encode the video or remove its row",
                    path,
                    stall_s,
                )
                os._exit(STALLED_EXIT)

    watcher = threading.Thread(target=watch, name="frame-cache-stall-guard", daemon=True)
    watcher.start()
    try:
        yield lambda: last.__setitem__(0, time.monotonic())
    finally:
        done.set()
        watcher.join()
