"""Decode each video once: its frames, resized to `size x size`, stored as one memory-mapped file.

`FrameCache(folder, size).open(path)` returns a reader with the `open_video` contract whose
`read(indices)` is a slice of a uint8 memory map `(T, size, size, C)`: the first open of a video
decodes every frame once, sequentially, resizes it with `ClipTransform`'s own function
(`vidlearn.data.transforms.resize`, so the pipeline's resize of a cached clip is a no-op), stores
it; every later clip of that video, in any process, costs a slice instead of a decode from the
last keyframe. `.npy`/`.npz` arrays are not cached: they are memory-mapped already.

One entry per (absolute path, backend, size): `<folder>/<key>.frames`, a
4096-byte JSON header (shape, fps, the source file's size and mtime, a CRC-32 of the frames)
followed by the raw frames. An entry is written to a temporary file in the same folder and
renamed into place (`os.replace`), so a killed writer leaves no half entry and two processes
writing the same entry both leave a whole one. An entry whose source changed (size or mtime),
whose length is wrong or whose checksum fails (checked once per process and entry) is rebuilt,
never trusted. With `max_gb`, the least recently used entries are deleted after each write
until the folder fits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidlearn.data.transforms import resize
from vidlearn.data.video import (
    ARRAY_EXTENSIONS,
    DecodeError,
    VideoReader,
    check_indices,
    open_video,
)
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
MAGIC = b"VLFC"
HEADER_BYTES = 4096  # frames start page-aligned after the header
SUFFIX = ".frames"
TEMP_PREFIX = ".tmp-"
# A temporary file untouched this long belongs to a writer that died (writers append every chunk).
STALE_TEMP_S = 600.0


@dataclass(frozen=True)
class FillResult:
    """What `FrameCache.fill` did for one video: `written` False when a valid entry existed."""

    path: str
    num_frames: int
    nbytes: int
    written: bool


class CachedVideo:
    """A cache entry opened as a `VideoReader`: frames `(T, size, size, C)` uint8, memory-mapped."""

    def __init__(self, path: str, header: dict, mapped: mmap.mmap) -> None:
        self.path, self._mapped = path, mapped
        shape = tuple(header["shape"])
        self.frames = np.frombuffer(
            mapped, dtype=np.uint8, count=int(np.prod(shape)), offset=HEADER_BYTES
        ).reshape(shape)
        self.num_frames, self.height, self.width = shape[:3]
        self.fps = float(header["fps"])

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = check_indices(self.path, indices, self.num_frames)
        return self.frames[wanted]  # (T, size, size, C): a copy of only these frames' pages

    def close(self) -> None:
        self.frames = None  # releases the buffer, so the map can close
        self._mapped.close()


class FrameCache:
    """Frames of each video decoded once, resized to `size x size`, kept in `folder`.

    `backend` decodes on a miss (as `open_video`); frames are resized by the training
    pipeline's own `resize`, so cached and uncached clips are the same. `max_gb`
    bounds the folder (None = unbounded); `chunk_mb` bounds the decoded frames held in memory
    while an entry is written.
    """

    def __init__(
        self,
        folder: str | Path,
        size: int,
        backend: str = "decord",
        max_gb: float | None = None,
        chunk_mb: float = 256.0,
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
        self.folder.mkdir(parents=True, exist_ok=True)
        # Entries whose checksum this process has verified, by (file, inode, mtime): a replaced
        # entry has a new inode and is verified again. Forked workers inherit the verified set.
        self._verified: set[tuple[str, int, int]] = set()

    # -- reading -------------------------------------------------------------------------------
    def open(self, path: str | Path, backend: str | None = None) -> VideoReader:
        """A reader of `path`'s cached frames, filling the entry first on a miss.

        `backend` decodes this file on a miss instead of the cache's own (the probe's per-file
        choice under backend=auto); the entry stays keyed by the cache's settings.
        """
        path = str(path)
        if path.lower().endswith(ARRAY_EXTENSIONS):
            return open_video(path, backend or self.backend)
        entry = self.entry_path(path)
        found = self._map_valid(path, entry)
        if found is None:
            self._write(path, entry, backend or self.backend)
            found = self._map_valid(path, entry)
            if found is None:  # another process evicted it right after the write
                raise DecodeError(
                    f"{path}: its frame cache entry {entry} was evicted as soon as it was "
                    "written; raise data.frame_cache_max_gb (it holds less than the entries in use)"
                )
        return CachedVideo(path, *found)

    def fill(self, path: str | Path) -> FillResult:
        """Make sure `path` has a valid entry (decoding it when not); arrays are skipped."""
        path = str(path)
        if path.lower().endswith(ARRAY_EXTENSIONS):
            return FillResult(path, 0, 0, False)
        entry = self.entry_path(path)
        found = self._map_valid(path, entry)
        if found is None:
            header = self._write(path, entry)
        else:
            header, mapped = found
            mapped.close()
        return FillResult(path, header["shape"][0], int(np.prod(header["shape"])), found is None)

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
            if header is None:
                logger.warning("%s: unreadable frame cache header; rebuilding it", entry)
                return None
            if header["source"] != [os.path.abspath(path), source.st_size, source.st_mtime_ns]:
                logger.info("%s changed since it was cached; rebuilding %s", path, entry)
                return None
            if header["settings"] != self._settings():
                logger.warning("%s: written with other settings; rebuilding it", entry)
                return None
            nbytes = int(np.prod(header["shape"]))
            if stat.st_size != HEADER_BYTES + nbytes:
                logger.warning(
                    "%s: %d bytes instead of %d (truncated); rebuilding it",
                    entry,
                    stat.st_size,
                    HEADER_BYTES + nbytes,
                )
                return None
            mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
            identity = (str(entry), stat.st_ino, stat.st_mtime_ns)
            if identity not in self._verified:
                if zlib.crc32(memoryview(mapped)[HEADER_BYTES:]) != header["crc32"]:
                    mapped.close()
                    logger.warning("%s: checksum mismatch (corrupt); rebuilding it", entry)
                    return None
                self._verified.add(identity)
            _touch(descriptor, stat)
            return header, mapped
        finally:
            os.close(descriptor)  # the map keeps its own reference to the file

    # -- writing -------------------------------------------------------------------------------
    def _write(self, path: str, entry: Path, backend: str | None = None) -> dict:
        """Decode (with `backend`, default the cache's), resize and store every frame of `path`
        atomically; returns the header."""
        before = os.stat(path)
        reader = open_video(path, backend or self.backend)
        temp = self.folder / f"{TEMP_PREFIX}{entry.stem}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            num_frames, fps = reader.num_frames, reader.fps
            if num_frames < 1:
                raise DecodeError(
                    f"{path}: the video has no frames; re-export it or remove its row"
                )
            frame_bytes = max(reader.height * reader.width * 3, 1)
            chunk = max(1, self.chunk_bytes // frame_bytes)
            crc, channels = 0, None
            with open(temp, "wb") as file:
                file.seek(HEADER_BYTES)
                for start in range(0, num_frames, chunk):
                    frames = reader.read(range(start, min(start + chunk, num_frames)))
                    sized = self._resize(frames)  # (t, size, size, C)
                    channels = sized.shape[-1]
                    crc = zlib.crc32(sized, crc)
                    file.write(sized.data)
                header = {
                    "version": FORMAT_VERSION,
                    "source": [os.path.abspath(path), before.st_size, before.st_mtime_ns],
                    "settings": self._settings(),
                    "shape": [num_frames, self.size, self.size, channels],
                    "dtype": "uint8",
                    "fps": fps,
                    "crc32": crc,
                }
                file.seek(0)
                file.write(_format_header(header))
            # No fsync: a crash that loses the data but keeps the rename leaves an entry that
            # fails its length or checksum check, and is rebuilt.
            os.replace(temp, entry)
        finally:
            reader.close()
            with contextlib.suppress(FileNotFoundError):  # gone already when os.replace ran
                temp.unlink()
        stat = os.stat(entry)
        self._verified.add((str(entry), stat.st_ino, stat.st_mtime_ns))
        self.evict(keep=entry)
        return header

    def _resize(self, frames: np.ndarray) -> np.ndarray:
        """`(t, H, W, C)` -> `(t, size, size, C)` uint8 with ClipTransform's own resize."""
        return np.stack([resize(frame, self.size) for frame in frames])

    # -- budget --------------------------------------------------------------------------------
    def evict(self, keep: Path | None = None) -> list[Path]:
        """Delete least recently used entries until the folder fits `max_gb`; returns them.

        Also deletes temporary files that no writer touched for STALE_TEMP_S (a killed run's).
        """
        entries, removed, now = [], [], time.time()
        for item in os.scandir(self.folder):
            try:
                stat = item.stat()
            except FileNotFoundError:  # evicted or renamed by another process meanwhile
                continue
            if item.name.startswith(TEMP_PREFIX):
                if now - stat.st_mtime > STALE_TEMP_S:
                    _unlink(Path(item.path), removed)
            elif item.name.endswith(SUFFIX):
                entries.append((stat.st_atime, stat.st_size, Path(item.path)))
        if self.max_bytes is None:
            return removed
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries):
            if total <= self.max_bytes:
                break
            if entry != keep:
                _unlink(entry, removed)
                total -= size
        if total > self.max_bytes:
            logger.warning(
                "frame cache %s holds %.2f GB, over data.frame_cache_max_gb=%.2f: one entry is "
                "larger than the budget; raise it",
                self.folder,
                total / 1e9,
                self.max_bytes / 1e9,
            )
        return removed


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


def _touch(descriptor: int, stat: os.stat_result) -> None:
    """Record a use (access time) for least-recently-used eviction; the mtime is kept."""
    # A read-only shared cache cannot record uses; it is still read, only never evicted by us.
    with contextlib.suppress(PermissionError):
        os.utime(descriptor, ns=(time.time_ns(), stat.st_mtime_ns))


def _unlink(path: Path, removed: list[Path]) -> None:
    with contextlib.suppress(FileNotFoundError):  # another process removed it first
        path.unlink()
        removed.append(path)
