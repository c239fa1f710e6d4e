"""Open a video (or a frame array) and read chosen frames: `open_video(path).read(indices)`.

`read` returns `(T, H, W, C)`: uint8 RGB (C = 3) for videos; for `.npy`/`.npz` arrays C = 1
(grayscale `(T, H, W)` input) or V views/channels, uint8 when stored as uint8 and float32
otherwise (MRI arrays are often float; `ClipTransform` handles both).

Open one reader per clip, inside the DataLoader worker, and close it after reading: a decord
reader created in the parent hangs when used in a forked worker, and keeping many readers open
grows memory. Every failure raises `DecodeError("<path>: <reason>; <what to do>")`.

Frame counts come from the container and can be too high (truncated files, broken metadata).
PyAV repeats the last decodable frame for indices past it and logs a WARNING (or, with
`strict=True`, raises DecodeError, as probing wants); decord and torchcodec cannot tell where
decoding ends without a costly search, so they raise DecodeError suggesting backend=pyav.

Every backend returns frames as displayed: a display-matrix rotation (phone videos) is applied,
so a set read partly by each backend reads alike. `backend="auto"` opens with torchcodec (when
installed), else decord, else PyAV: the order of the measured speeds (see AUTO_BACKENDS).
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np

from vidlearn.errors import ConfigError, UserError

if TYPE_CHECKING:
    import av
    import torchcodec.decoders

logger = logging.getLogger(__name__)

ARRAY_EXTENSIONS = (".npy", ".npz")
BACKENDS = ("auto", "decord", "pyav", "torchcodec", "torchcodec_approximate")
# backend="auto" tries these in order, less the optional ones whose library cannot load.
# Measured (experiments/README.md, bench_decoders, 2026-11-30, two runs on 2 loaded cores):
# random 16-frame clips, the reads of the default train and eval clip samplers, opened and read
# 1.2-1.6x faster with torchcodec than with decord with a keyframe every 12 frames (320x240 and
# 1280x720, both runs); with one keyframe per video the two tie (torchcodec 0.86-1.12x). The
# keyframe interval is not in the header (every packet would have to be demuxed) and the
# resolution alone does not change the winner, so one order serves every kind of file. PyAV
# last: it is no faster at clips, but reads what the others cannot (frames past a truncation,
# odd widths).
AUTO_BACKENDS = ("torchcodec", "decord", "pyav")
OPTIONAL_BACKENDS = ("torchcodec",)  # an extra: auto goes without it when it cannot load
# Libraries installed but failing to load, by module: tried once per process (_load_error).
_LOAD_FAILURES: dict[str, Exception] = {}
_TORCHCODEC = (
    "torchcodec.decoders",
    "`pip install torchcodec` (or `pip install vidlearn[torchcodec]`) and the system FFmpeg "
    "libraries (`apt-get install ffmpeg` on Debian)",
)
# What each backend imports, and how to install it.
BACKEND_LIBRARIES = {
    "decord": ("decord", "`pip install decord`"),
    "pyav": ("av", "`pip install av`"),
    "torchcodec": _TORCHCODEC,
    "torchcodec_approximate": _TORCHCODEC,
}


class DecodeError(UserError, RuntimeError):
    """A file cannot be read; the message names the file, the reason and what to do."""


def auto_backends() -> tuple[str, ...]:
    """The backends `auto` tries, in order: AUTO_BACKENDS less optional ones that cannot load."""
    return tuple(
        name for name in AUTO_BACKENDS if name not in OPTIONAL_BACKENDS or _load_error(name) is None
    )


def _load_error(backend: str) -> Exception | None:
    """Why `backend`'s library cannot be imported, or None when it can.

    A library that is installed but fails to load (OSError, RuntimeError: torchcodec without
    the FFmpeg libraries) is tried once per process: Python keeps nothing of a failed import,
    so each open_video("auto") would repeat its seconds of library loading. A missing module
    (ImportError) is not remembered: looking for it again costs nothing, and tests hide a
    library for a while by setting its sys.modules entry to None.
    """
    module = BACKEND_LIBRARIES[backend][0]
    if module in _LOAD_FAILURES:
        return _LOAD_FAILURES[module]
    try:
        importlib.import_module(module)
    except ImportError as error:
        return error
    except (OSError, RuntimeError) as error:
        _LOAD_FAILURES[module] = error
        return error
    return None


def check_backend(backend: str) -> None:
    """ConfigError naming `data.backend` when `backend` (or a backend `auto` needs) cannot load.

    A missing library is a fault of the environment, not of any file: it stops setup once,
    instead of making every file unreadable (and being remembered so in the probe index).
    """
    if backend not in BACKENDS:
        raise ConfigError(
            f"data.backend={backend!r} is not a backend; use one of {', '.join(BACKENDS)}"
        )
    needed = [name for name in AUTO_BACKENDS if name not in OPTIONAL_BACKENDS]
    for name in needed if backend == "auto" else (backend,):
        error = _load_error(name)
        if error is not None:
            raise ConfigError(
                f"data.backend={backend} needs the {name} backend, which cannot load ({error}): "
                f"install it with {BACKEND_LIBRARIES[name][1]}, or choose another data.backend "
                f"(one of {', '.join(BACKENDS)})"
            ) from error


class VideoReader(Protocol):
    """What every backend offers; `read` returns `(T, H, W, C)` frames in index order."""

    num_frames: int
    fps: float  # 0.0 when unknown (arrays)
    height: int
    width: int

    def read(self, indices: Sequence[int]) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class VideoInfo:
    """Header facts of one video; `duration_s` and `codec` are None when the backend cannot tell."""

    num_frames: int
    fps: float
    height: int
    width: int
    duration_s: float | None
    codec: str | None


def open_video(
    path: str | Path,
    backend: str = "decord",
    threads: int = 1,
    array_key: str = "frames",
    strict: bool = False,
) -> VideoReader:
    """Open `path` with `backend`; `.npy`/`.npz` files are memory-mapped arrays whatever the backend.

    `threads` is the decoder's thread count: 1 by default because DataLoader workers already
    decode in parallel. An `.npz` holding several arrays is read at `array_key`. `strict` makes
    PyAV raise DecodeError for frames past a truncation instead of repeating the last one.
    `backend="auto"` is the first of `auto_backends()` (torchcodec, decord, PyAV) that opens it.
    """
    path = str(path)
    if backend not in BACKENDS:
        raise ConfigError(
            f"data.backend={backend!r} is not a video backend; use one of {', '.join(BACKENDS)}."
        )
    if not os.path.isfile(path):
        raise DecodeError(f"{path}: file not found; fix the manifest row or restore the file")
    if os.path.getsize(path) == 0:
        raise DecodeError(f"{path}: file is empty (0 bytes); re-export it or remove its row")
    if path.lower().endswith(ARRAY_EXTENSIONS):
        return ArrayReader(path, array_key)
    if backend == "auto":
        return _open_auto(path, threads, strict)
    return _open_with(path, backend, threads, strict)


def _open_with(path: str, backend: str, threads: int, strict: bool) -> VideoReader:
    if backend == "decord":
        return DecordReader(path, threads)
    if backend == "pyav":
        return PyAVReader(path, threads, strict)
    seek_mode = "approximate" if backend == "torchcodec_approximate" else "exact"
    return TorchCodecReader(path, threads, seek_mode)


def _open_auto(path: str, threads: int, strict: bool) -> VideoReader:
    """The first of `auto_backends()` that opens `path`; DecodeError naming each when none can."""
    failures: list[tuple[str, DecodeError]] = []
    for backend in auto_backends():
        try:
            return _open_with(path, backend, threads, strict)
        except DecodeError as error:
            failures.append((backend, error))
    *earlier, (_, last) = failures
    others = "; ".join(
        f"{backend} cannot open it either: {reason_of(error, path)}"
        for backend, error in earlier
        if reason_of(error, path) != reason_of(last, path)  # a shared reason is said once
    )
    raise DecodeError(f"{last} ({others})" if others else str(last)) from last


def reason_of(error: DecodeError | str, path: str | Path) -> str:
    """The error text without the leading `path: `, for records that already name the file."""
    text, prefix = str(error), f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def probe_video(path: str | Path, backend: str = "decord") -> VideoInfo:
    """Header facts of `path`, after checking that its first and last frames decode.

    Decoding both ends catches what opening alone misses (a truncated file, a frame width
    decord cannot copy), so a file that passes reads at every index with the same backend.
    """
    reader = open_video(path, backend, strict=True)
    try:
        reader.read([0, reader.num_frames - 1])
        duration = reader.num_frames / reader.fps if reader.fps > 0 else None
        codec = getattr(reader, "codec", None)
        return VideoInfo(
            reader.num_frames, reader.fps, reader.height, reader.width, duration, codec
        )
    finally:
        reader.close()


def check_indices(path: str, indices: Sequence[int], num_frames: int) -> np.ndarray:
    """Indices as int64 `(T,)`; DecodeError when empty or outside `[0, num_frames)`."""
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size == 0:
        raise DecodeError(
            f"{path}: no frame indices requested; the clip sampler returned an empty clip"
        )
    bad = wanted[(wanted < 0) | (wanted >= num_frames)]
    if bad.size:
        raise DecodeError(
            f"{path}: frame indices {bad[:5].tolist()} are outside [0, {num_frames}); "
            "the clip sampler must stay below the reader's num_frames"
        )
    return wanted


class ArrayReader:
    """Frames stored as a `(T, H, W)` or `(T, H, W, V)` array in `.npy` or `.npz`.

    A C-ordered `.npy` is read frame range by frame range with `readinto` from its data offset:
    only the clip's frames are read, about twice as fast as a memory map's page faults
    (measured: `experiments/bench_arrays.py`); other `.npy` files are memory-mapped and `.npz`
    archives loaded.
    """

    fps = 0.0  # arrays carry no frame rate; samplers with target_fps refuse them

    def __init__(self, path: str, array_key: str = "frames") -> None:
        self.path = path
        self.file: BinaryIO | None = None
        self.array: np.ndarray | None = None
        try:
            shape, dtype = self._open_npy() if path.lower().endswith(".npy") else (None, None)
            if shape is None:
                loaded = np.load(path, mmap_mode="r", allow_pickle=False)
                if isinstance(loaded, np.lib.npyio.NpzFile):
                    with loaded:
                        loaded = _npz_array(path, loaded, array_key)
                self.array = loaded
                shape, dtype = loaded.shape, loaded.dtype
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            self.close()
            raise DecodeError(
                f"{path}: not a readable NumPy array ({error}); re-save it with np.save"
            ) from error
        if len(shape) not in (3, 4) or 0 in shape:
            self.close()
            raise DecodeError(
                f"{path}: array of shape {shape}; expected (T, H, W) or (T, H, W, V) with T, H, W > 0"
            )
        if dtype.kind not in "biuf":  # complex would lose its imaginary part, timedelta its unit
            self.close()
            raise DecodeError(
                f"{path}: array dtype {dtype} is not real numbers; store uint8 or float frames"
            )
        self.shape = (*shape, 1) if len(shape) == 3 else tuple(shape)  # (T, H, W, C)
        if self.array is not None and self.array.ndim == 3:
            self.array = self.array[..., None]  # a view: nothing is read yet
        self.dtype = dtype
        self.num_frames, self.height, self.width = self.shape[:3]

    def _open_npy(self) -> tuple[tuple[int, ...] | None, np.dtype | None]:
        """Read a `.npy` header; (shape, dtype) when its frames can be read by offset, else
        (None, None) (Fortran order, objects): the caller memory-maps it instead."""
        self.file = open(self.path, "rb")  # noqa: SIM115 - closed by close(), after the reads
        shape, dtype = _npy_header(self.file)
        if shape is None:
            self.close()
            return None, None
        self.offset = self.file.tell()
        needed = self.offset + math.prod(shape) * dtype.itemsize
        if os.fstat(self.file.fileno()).st_size < needed:
            raise ValueError(f"the file is truncated: {needed} bytes expected")
        return shape, dtype

    def read(self, indices: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        """Frames `(T, H, W, C)`: uint8 kept as uint8, any other dtype as float32; DecodeError
        when a float frame holds NaN or infinity (it would reach the model as a NaN loss).

        `out` (a batch's slot): a C-contiguous uint8 array of exactly that shape, which a uint8
        `.npy` read by offset fills and returns, saving the batch its copy; ignored otherwise.
        """
        wanted = check_indices(self.path, indices, self.num_frames)
        # only these frames are read (from the memory map, or the file)
        if self.file is None:
            frames = np.asarray(self.array[wanted])
        else:
            fits = (
                out is not None
                and out.dtype == self.dtype == np.uint8
                and out.shape == (len(wanted), *self.shape[1:])
                and out.flags.c_contiguous
            )
            frames = self._read_frames(wanted, out if fits else None)
        if frames.dtype == np.uint8:
            return frames
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused below
            frames = frames.astype(np.float32)
        if self.dtype.kind == "f":  # NaN, inf, or beyond float32 (integers always fit)
            finite = np.isfinite(frames.reshape(len(frames), -1)).all(axis=1)
            if not finite.all():
                raise DecodeError(
                    f"{self.path}: frame(s) {sorted(set(wanted[~finite].tolist()))} hold NaN or "
                    "infinite values (or values beyond float32); replace them, e.g. with "
                    "np.nan_to_num, or remove the file"
                )
        return frames

    def _read_frames(self, wanted: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        """The frames at `wanted` (into `out`, when given), one `readinto` per run of
        consecutive indices."""
        frames = np.empty((len(wanted), *self.shape[1:]), self.dtype) if out is None else out
        frame_bytes = frames[0].nbytes
        breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
        for run_start, run_stop in zip(
            [0, *breaks.tolist()], [*breaks.tolist(), len(wanted)], strict=True
        ):
            self.file.seek(self.offset + int(wanted[run_start]) * frame_bytes)
            target = memoryview(frames[run_start:run_stop]).cast("B")
            if self.file.readinto(target) != target.nbytes:
                raise DecodeError(f"{self.path}: the file ended early; re-save it with np.save")
        return frames

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = None
        self.array = None


# `.npy` headers parsed in this process (each worker its own), keyed by the header's own bytes:
# a data set of same-shaped clips parses once, and a file rewritten in place can never be read
# with a stale header. NumPy's parse (`ast.literal_eval`) cost about as much as reading a
# 25x150x150 uint8 clip (measured: `experiments/bench_arrays.py`).
_NpyHeader = tuple[tuple[int, ...] | None, np.dtype | None]
_NPY_HEADERS: dict[bytes, _NpyHeader] = {}
_NPY_HEADERS_KEPT = 10_000  # past this many distinct headers, the oldest goes first


def _npy_header(file: BinaryIO) -> _NpyHeader:
    """(shape, dtype) of the `.npy` file open at its start, which is left at the data; (None,
    None) when its frames cannot be read by offset (Fortran order, objects)."""
    version = np.lib.format.read_magic(file)
    length_field = file.read(2 if version == (1, 0) else 4)
    raw = bytes(version) + length_field + file.read(int.from_bytes(length_field, "little"))
    header = _NPY_HEADERS.get(raw)
    if header is None:
        file.seek(np.lib.format.MAGIC_LEN)  # parsed by NumPy, which leaves it at the data
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran_order, dtype = read_header(file)
        header = (None, None) if fortran_order or dtype.hasobject else (tuple(shape), dtype)
        if len(_NPY_HEADERS) >= _NPY_HEADERS_KEPT:
            del _NPY_HEADERS[next(iter(_NPY_HEADERS))]
        _NPY_HEADERS[raw] = header
    return header


def _npz_array(path: str, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    """The archive's only array, or the one stored under `key`."""
    names = list(archive.files)
    if len(names) == 1:
        return archive[names[0]]
    if key in names:
        return archive[key]
    raise DecodeError(
        f"{path}: holds arrays {names} and none is named {key!r}; save the frames under {key!r}"
    )


class DecordReader:
    """decord: one batched `get_batch` call per clip."""

    codec = None  # decord does not expose it

    def __init__(self, path: str, threads: int = 1) -> None:
        import decord

        self.path = path
        try:
            self.reader = decord.VideoReader(path, num_threads=threads)
        except (decord.DECORDError, RuntimeError, AssertionError) as error:
            if "cannot find video stream" in str(error):
                raise DecodeError(
                    f"{path}: decord finds no video stream it can decode (no video, or a codec "
                    "decord lacks, such as AV1); try backend=pyav or remove its row"
                ) from error
            raise DecodeError(
                f"{path}: decord cannot open it ({_last_line(error)}); try backend=pyav, or re-encode "
                "with `ffmpeg -i IN -c:v libx264 OUT.mp4`"
            ) from error
        self.num_frames = len(self.reader)
        self.fps = float(self.reader.get_avg_fps())

    @cached_property
    def _shape(self) -> tuple[int, ...]:
        return self.read([0]).shape  # decord has no size attribute; decode the first frame once

    @property
    def height(self) -> int:
        return self._shape[1]

    @property
    def width(self) -> int:
        return self._shape[2]

    def read(self, indices: Sequence[int]) -> np.ndarray:
        import decord

        wanted = check_indices(self.path, indices, self.num_frames)
        try:
            batch = self.reader.get_batch(wanted.tolist())
        except decord.DECORDError as error:
            if "size must exactly match" in str(error):  # decord miscounts padded rows
                raise DecodeError(
                    f"{self.path}: decord cannot copy its frames ({_last_line(error)}); decord "
                    "fails on some frame widths (4:2:0 video not a multiple of 32 pixels wide, "
                    "including rotated phone videos): use backend=pyav"
                ) from error
            raise DecodeError(
                f"{self.path}: decord cannot decode frames up to {wanted.max()} of {self.num_frames} "
                f"({_last_line(error)}); the file is probably truncated: use backend=pyav, which "
                "repeats the last decodable frame, or re-encode it"
            ) from error
        # get_batch converts through decord's thread-wide bridge, which other libraries set
        # (PyTorchVideo sets "torch"); bridge_in turns any bridge's output back into decord's own.
        return decord.bridge.bridge_in(batch).asnumpy()  # (T, H, W, 3)

    def close(self) -> None:
        del self.reader


class PyAVReader:
    """PyAV: decode sequentially from the keyframe before each run of wanted frames.

    Dense indices are decoded in one pass; a gap of over two seconds starts a new run (a seek).
    Variable frame rate videos are decoded from the start, as a seek's timestamp does not tell
    which frame it landed on. A read that starts at or after where the previous one stopped
    (within two seconds, or anywhere ahead in a variable-rate video) continues decoding instead,
    so reading a video in consecutive chunks decodes each frame once. Frames are turned by their
    display-matrix rotation, as decord turns them. `strict`: frames past a truncation raise
    DecodeError instead of repeating.
    """

    def __init__(self, path: str, threads: int = 1, strict: bool = False) -> None:
        import av

        self.path = path
        self.strict = strict
        try:
            self.container = av.open(path)
        except (av.FFmpegError, UnicodeDecodeError) as error:
            raise DecodeError(
                f"{path}: not a readable video ({error}); re-encode it or remove its row"
            ) from error
        if not self.container.streams.video:
            self.container.close()
            raise DecodeError(
                f"{path}: has no video stream; remove its row or point it at the video file"
            )
        self.stream = self.container.streams.best("video")  # as decord and ffmpeg choose
        self.stream.thread_count = threads
        self.stream.thread_type = "SLICE" if threads == 1 else "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.codec = self.stream.codec_context.name
        # Seeking lands on a timestamp; turning it into a frame index assumes a constant rate.
        base = float(self.stream.base_rate or 0)
        self.constant_rate = base > 0 and abs(self.fps - base) <= 0.01 * base
        # The decoder left running by the last read and the index of the frame it yields next.
        self._decoding: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._next_index = 0
        try:
            self.num_frames = self._count_frames()
        except av.FFmpegError as error:  # e.g. an empty AVI refuses the seek back to its start
            self.container.close()
            raise DecodeError(
                f"{path}: cannot count its frames ({error}); re-export it or remove its row"
            ) from error
        if self.num_frames == 0:
            self.close()
            raise DecodeError(
                f"{path}: the video stream has no frames; re-export it or remove its row"
            )

    @cached_property
    def rotation(self) -> int:
        """Counter-clockwise display rotation in degrees, from the first frame's side data.

        PyAV exposes the display matrix on decoded frames only (`VideoFrame.rotation`), so the
        first frame is decoded once (`read` rewinds before decoding from the start).
        """
        import av

        self._decoding = None  # the seek below moves the demuxer under a running decoder
        try:
            self.container.seek(0)
            frame = next(self.container.decode(self.stream), None)
        except av.FFmpegError as error:
            raise DecodeError(
                f"{self.path}: cannot decode its first frame ({error}); re-encode or remove it"
            ) from error
        return frame.rotation if frame is not None else 0

    @property
    def height(self) -> int:
        turned = self.rotation % 180 == 90
        return self.stream.width if turned else self.stream.height

    @property
    def width(self) -> int:
        turned = self.rotation % 180 == 90
        return self.stream.height if turned else self.stream.width

    def _count_frames(self) -> int:
        """The header's frame count, else duration x fps, else a count of demuxed packets."""
        if self.stream.frames:
            return self.stream.frames
        if self.stream.duration and self.fps:
            return round(float(self.stream.duration * self.stream.time_base) * self.fps)
        if self.container.duration and self.fps:
            return round(self.container.duration / 1_000_000 * self.fps)
        packets = sum(1 for packet in self.container.demux(self.stream) if packet.size)
        if packets:
            self.container.seek(0)
        return packets

    def read(self, indices: Sequence[int]) -> np.ndarray:
        import av

        wanted = check_indices(self.path, indices, self.num_frames)
        last = int(wanted.max())
        frames: dict[int, np.ndarray] = {}
        try:
            for run in self._runs(np.unique(wanted)):
                keep = set(run.tolist())
                for index, frame in self._frames_from(int(run[0])):
                    self._next_index = index + 1
                    if index in keep:
                        frames[index] = displayed(frame)  # (H, W, 3)
                    if index >= run[-1]:
                        break
        except av.FFmpegError as error:  # corrupt or truncated data: keep what decoded
            self._decoding = None
            if not self.strict:  # strict: the DecodeError below says it
                logger.warning("%s: decoding stopped early (%s)", self.path, error)
        except BaseException:  # e.g. Ctrl-C: an interrupted decoder cannot be continued
            self._decoding = None
            raise
        if not frames:
            raise DecodeError(
                f"{self.path}: no wanted frame could be decoded; the file is corrupt: re-encode or remove it"
            )
        decoded = np.array(sorted(frames))
        if decoded[-1] < last and self.strict:
            raise DecodeError(
                f"{self.path}: frame {last} of the {self.num_frames} the container claims cannot "
                "be decoded; the file is truncated or corrupt: re-encode or remove it"
            )
        if decoded[-1] < last:
            logger.warning(
                "%s: frames %d..%d cannot be decoded (the container claims %d); repeating frame %d",
                self.path,
                decoded[-1] + 1,
                last,
                self.num_frames,
                decoded[-1],
            )
        # Each wanted index takes the last decoded frame at or before it.
        nearest = decoded[np.maximum(np.searchsorted(decoded, wanted, side="right") - 1, 0)]
        return np.stack([frames[i] for i in nearest])  # (T, H, W, 3)

    def _runs(self, indices: np.ndarray) -> list[np.ndarray]:
        """Split sorted indices at gaps over two seconds, where a new seek beats decoding through."""
        if not self.constant_rate:
            return [indices]  # no seeks: one pass from the first frame counts frames exactly
        return np.split(indices, np.flatnonzero(np.diff(indices) > max(2 * self.fps, 1)) + 1)

    def _frames_from(self, first: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """(frame index, frame) from at or before frame `first`: the running decoder when it is
        not past `first` and the skip is short (any skip in a variable-rate video), else anew."""
        if self._decoding is not None and self._next_index <= first:
            skip = first - self._next_index
            if not self.constant_rate or skip <= max(2 * self.fps, 1):
                return self._decoding
        # A plain function, not a method: a running generator that held `self` would make a
        # reference cycle, freed by the garbage collector at some later time, possibly in a
        # forked loader worker, where freeing FFmpeg's threaded contexts deadlocks.
        self._decoding = numbered_frames(
            self.container, self.stream, self.fps, self.constant_rate, first
        )
        return self._decoding

    def close(self) -> None:
        self._decoding = None
        self.container.close()


def numbered_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: float,
    constant_rate: bool,
    first: int,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(frame index, frame) of `stream` in presentation order, starting at or before `first`."""
    # Within a second of the start, decoding from frame 0 costs less than a seek, and counting
    # frames is exact even for variable frame rates, where pts-derived indices are not: with
    # a variable rate, always count from the start.
    if first > fps > 0 and constant_rate:
        time_base, start_pts = stream.time_base, stream.start_time or 0
        container.seek(start_pts + int(first / fps / time_base), stream=stream, backward=True)
        frames = container.decode(stream)
        frame = next(frames, None)
        if frame is not None and frame.pts is not None:
            index = round(float((frame.pts - start_pts) * time_base) * fps)
            if index <= first:  # the keyframe is at or before the target, as asked
                yield index, frame
                yield from enumerate(frames, start=index + 1)
                return
    # From the start: rewind, as an earlier read (or the rotation lookup) moved the demuxer.
    container.seek(0)
    yield from enumerate(container.decode(stream))


def displayed(frame: av.VideoFrame) -> np.ndarray:
    """The frame as RGB `(H, W, 3)` uint8, turned by its display-matrix rotation as players show it."""
    array = frame.to_ndarray(format="rgb24")  # (H, W, 3) as stored
    turned = np.rot90(
        array, frame.rotation // 90
    )  # both turn anticlockwise; checked against decord
    return np.ascontiguousarray(turned)


class TorchCodecReader:
    """torchcodec: one batched `get_frames_at` call per clip.

    `seek_mode="exact"` scans the file's packets when it opens (exact frame count and keyframe
    positions); `"approximate"` (the `torchcodec_approximate` backend) trusts the header instead,
    cheaper to open, but turns an index into a timestamp at the header's rate: a variable-rate
    video (its frames over its duration disagree with that rate) is opened exact instead, as
    approximate seeks there return the wrong frames, and so is a header approximate mode
    cannot open (no duration). `device="cuda"` decodes on the GPU (NVDEC)
    and copies the frames back, for a process that owns a GPU (not a forked loader worker).
    torchcodec turns frames by the display matrix itself; `height`/`width` are the displayed sizes.
    """

    def __init__(
        self, path: str, threads: int = 1, seek_mode: str = "exact", device: str = "cpu"
    ) -> None:
        check_backend("torchcodec")  # a ConfigError, not one DecodeError per file
        self.path = path
        if seek_mode == "approximate":
            try:
                self.decoder = self._open(threads, seek_mode, device)
            except DecodeError:  # e.g. a header without a duration (a WebM from a browser)
                seek_mode = "exact"
            else:
                if not _constant_rate(self.decoder.metadata):
                    seek_mode = "exact"
        if seek_mode == "exact":
            self.decoder = self._open(threads, seek_mode, device)
        self.seek_mode = seek_mode
        metadata = self.decoder.metadata
        self.num_frames = metadata.num_frames or 0
        if self.num_frames == 0:
            raise DecodeError(
                f"{path}: torchcodec finds no frames in its video stream; re-export it or remove "
                "its row"
            )
        self.fps = float(metadata.average_fps or 0.0)
        self.height, self.width, self.codec = metadata.height, metadata.width, metadata.codec

    def _open(self, threads: int, seek_mode: str, device: str) -> torchcodec.decoders.VideoDecoder:
        from torchcodec.decoders import VideoDecoder

        try:
            return VideoDecoder(
                self.path,
                dimension_order="NHWC",
                num_ffmpeg_threads=threads,
                seek_mode=seek_mode,
                device=device,
            )
        except (RuntimeError, ValueError) as error:
            if "best video stream is unknown" in str(error):
                raise DecodeError(
                    f"{self.path}: has no video stream; remove its row or point it at the video "
                    "file"
                ) from error
            raise DecodeError(
                f"{self.path}: torchcodec cannot open it ({_torchcodec_reason(error, self.path)}); "
                "try backend=pyav, or re-encode with `ffmpeg -i IN -c:v libx264 OUT.mp4`"
            ) from error

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = check_indices(self.path, indices, self.num_frames)
        try:
            batch = self.decoder.get_frames_at(indices=wanted.tolist()).data  # (T, H, W, 3)
        except (RuntimeError, IndexError) as error:
            raise DecodeError(
                f"{self.path}: torchcodec cannot decode frames up to {wanted.max()} of "
                f"{self.num_frames} ({_torchcodec_reason(error, self.path)}); the file is probably "
                "truncated or corrupt: try backend=pyav, or re-encode it"
            ) from error
        return batch.cpu().numpy()

    def close(self) -> None:
        del self.decoder


def _constant_rate(metadata: torchcodec.decoders.VideoStreamMetadata) -> bool:
    """Whether the header's frame count over its duration matches its frame rate (within 1%)."""
    frames, seconds = metadata.num_frames_from_header, metadata.duration_seconds_from_header
    rate = metadata.average_fps_from_header
    if not (frames and seconds and rate):
        return False
    return abs(frames / seconds - rate) <= 0.01 * rate


def _torchcodec_reason(error: BaseException, path: str) -> str:
    """The first line of a torchcodec error, without its C++ class, source location and the path
    (later lines ask for a bug report)."""
    text = re.sub(r"^\w+, \S+:\d+, ", "", str(error).strip()).splitlines()[0].strip()
    return text.replace(f"{path} ", "").replace(path, "the file")


def _last_line(error: BaseException) -> str:
    """decord prefixes errors with a C++ source location; keep the part a user can act on."""
    text = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return text.split("] ")[-1]
