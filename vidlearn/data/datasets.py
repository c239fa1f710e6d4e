"""Map-style datasets: one item = read one file, sample a clip, transform it.

An item's random draws (clip position, augmentation) come from one generator built from its key
(`vidlearn.data.sample_keys`), so they do not depend on the worker that reads it.

A file that cannot be read is replaced by another sample chosen deterministically from the index,
and the substitution travels with the item (`skipped`, a list of SkipRecord) so the training loop can
count it, report it and stop when too many files are bad. Nothing is skipped silently.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, default_collate, get_worker_info

from vidlearn.data.clip_sampling import ClipSampler
from vidlearn.data.frame_cache import FrameCache
from vidlearn.data.sample_keys import SampleKey, key_index, sample_generator
from vidlearn.data.transforms import NORMALISED, BatchNormalisation, ClipTransform, is_slot
from vidlearn.data.video import ArrayReader, DecodeError, check_backend, open_video, reason_of

logger = logging.getLogger(__name__)

# Stride between substitute candidates; odd and large so a run of bad neighbours is jumped over.
_SUBSTITUTE_STEP = 7919


class SkipRecord(NamedTuple):
    """A file left out of a run: its path, why, and when ("probe": before training, "run": while
    producing an item). Kept as fields end to end, so any path (": " or not) reads back exactly."""

    path: str
    reason: str
    stage: str = "run"


class ReadingBoard:
    """The row each DataLoader worker is reading now (-1: none), in memory shared with the main
    process: when the loader times out, it names the file a hung decoder is stuck on.

    Made in the main process before the workers start (they inherit it, or get it pickled when
    spawned); a worker writes only its own slot, one integer per attempt.
    """

    def __init__(self, workers: int) -> None:
        self.rows = multiprocessing.RawArray("q", [-1] * workers)

    def mark(self, row: int) -> None:
        """Record that this worker now reads `row` (-1: nothing); a no-op in the main process."""
        info = get_worker_info()
        if info is not None and info.id < len(self.rows):
            self.rows[info.id] = row

    def reading(self) -> dict[int, int]:
        """Worker id -> the row it is reading, for the busy workers."""
        return {worker: row for worker, row in enumerate(self.rows) if row >= 0}


class Transform(Protocol):
    """`transform(array, rng) -> Tensor`: a clip (T, H, W, C) or an image (H, W, C), one draw.

    A transform may return a dict instead: `input` and further per-item tensors that travel
    with it (`peak` (T,), see `ClipTransform`).
    """

    def __call__(
        self, array: np.ndarray, rng: np.random.Generator
    ) -> Tensor | dict[str, Tensor]: ...


class SampleDataset(Dataset, ABC):
    """Shared logic: targets, deterministic substitution of unreadable files."""

    def __init__(self, paths: Sequence[str], targets: np.ndarray, max_attempts: int = 10) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"{len(paths)} paths but {len(targets)} targets")
        self.paths = list(paths)
        self.targets = np.asarray(targets)
        self.max_attempts = max_attempts
        self.board: ReadingBoard | None = None  # set by vidlearn.data.bad_files.WatchedDataLoader

    def __len__(self) -> int:
        return len(self.paths)

    @abstractmethod
    def load(
        self, index: int, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> Tensor | dict[str, Tensor]:
        """Read and transform the sample at `index` (the transform's output: the input, or a dict
        of `input` and what travels with it); raises DecodeError when it cannot be read.

        `out`: the batch's slot for this input (`(T, C, H, W)` for a clip), where a sample may
        be produced to save the batch its copy; the input is taken wherever it lies.
        """

    def __getitem__(self, key: SampleKey | int) -> dict:
        return self._item(key)

    def __getitems__(self, keys: Sequence[SampleKey | int]) -> list[dict]:
        """The items of one batch (torch's DataLoader fetches a batch's keys with this): the
        items `self[key]` gives, their inputs in one preallocated batch (`BatchItems.inputs`)
        that `collate` takes as it is, and uint8 array clips read straight into their slot.

        Clips that cannot share a batch (shapes or dtypes differ) come back as plain items, for
        `collate` to refuse as it did item by item; so do inputs of a dtype NumPy lacks
        (bfloat16), for `collate` to stack.
        """
        if not keys:  # a batch sampler may hand over none
            return []
        items = [self._item(keys[0])]
        if not _numpy_holds(items[0]["input"].dtype):  # the batch's slots are NumPy views
            return items + [self._item(key) for key in keys[1:]]
        inputs = _batch_like(items[0]["input"], len(keys))  # (B, ...)
        # Slots and copies through NumPy: torch's copy_ went through its thread pool (6 ms per
        # 25x150x150 uint8 clip with 2 threads on a loaded machine, 17 us with NumPy).
        slots = inputs.numpy()
        np.copyto(slots[0], items[0]["input"].numpy())
        items[0]["input"] = inputs[0]
        for slot, key in enumerate(keys[1:], start=1):
            item = self._item(key, slots[slot])
            items.append(item)
            made = item["input"].numpy()
            if made.shape != slots[slot].shape or made.dtype != slots.dtype:
                return items + [self._item(key) for key in keys[slot + 1 :]]
            if not is_slot(made, slots[slot]):  # not produced in its slot, as it lies there
                np.copyto(slots[slot], made)
            item["input"] = inputs[slot]
        return BatchItems(items, inputs)

    def _item(self, key: SampleKey | int, out: np.ndarray | None = None) -> dict:
        index = key_index(key)
        rng = sample_generator(key)
        skipped: list[SkipRecord] = []
        candidate = index
        for _ in range(self.max_attempts):
            if self.board is not None:
                self.board.mark(candidate)
            try:
                sample = self.load(candidate, rng, out)
            except DecodeError as error:
                # Sampler errors (ShortVideoError) do not name the file: the record always does.
                path = self.paths[candidate]
                record = SkipRecord(path, reason_of(error, path))
                logger.warning("skipping %s: %s", path, record.reason)
                skipped.append(record)
                candidate = (candidate + _SUBSTITUTE_STEP) % len(self.paths)
                continue
            if self.board is not None:
                self.board.mark(-1)
            fields = sample if isinstance(sample, dict) else {"input": sample}
            return {
                **fields,
                "target": torch.as_tensor(self.targets[candidate]),
                "index": candidate,
                # drawn last, from the same key: seeds augmentation on the device, if any
                "seed": int(rng.integers(2**62)),
                "skipped": skipped,
            }
        raise DecodeError(
            f"{self.max_attempts} files in a row could not be read, starting at "
            f"{self.paths[index]}; the data set is probably broken:\n"
            + "\n".join(f"{record.path}: {record.reason}" for record in skipped)
        )


class VideoClipDataset(SampleDataset):
    """Videos or frame arrays -> one clip each: `input` (T, C, H, W) float32 (in the frames'
    dtype when the transform leaves normalising to the device, then with `peak` (T,) float32
    under per-frame max normalisation).

    `backends`, one per path, overrides `backend` (the probe's decision per file). `threads`:
    decoder threads per reader. `channels`: the data set's channel count; a file whose frames
    have another (a 2-view array among grey ones) is unreadable, not a batch collate fails on.

    The reader is opened per item inside the worker process: decord readers made in the parent
    hang in forked workers, and readers kept open grow memory. With a `frame_cache`, the reader
    is a memory map of the video's frames already resized to the transform's size.

    In a batch fetch (`SampleDataset.__getitems__`) a `ClipTransform` writes each clip into its
    slot of the batch (`out=`): no stacking copy of every clip, which cost as much as
    normalising it (issue 23); other transforms' clips are copied there.
    """

    def __init__(
        self,
        paths: Sequence[str],
        targets: np.ndarray,
        clip_sampler: ClipSampler,
        transform: Transform,
        backend: str = "decord",
        max_attempts: int = 10,
        backends: Sequence[str] | None = None,
        frame_cache: FrameCache | None = None,
        threads: int = 1,
        channels: int | None = None,
    ) -> None:
        super().__init__(paths, targets, max_attempts)
        if backends is not None and len(backends) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(backends)} backends")
        for name in {backend, *(backends or [])}:
            check_backend(name)  # a missing library stops here, not as every file unreadable
        self.clip_sampler = clip_sampler
        self.transform = transform
        self.backend = backend
        self.backends = list(backends) if backends is not None else None
        self.frame_cache = frame_cache
        self.threads = threads
        self.channels = channels

    def load(
        self, index: int, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> Tensor | dict[str, Tensor]:
        backend = self.backends[index] if self.backends is not None else self.backend
        if self.frame_cache is not None:
            reader = self.frame_cache.open(self.paths[index], backend, self.threads)
        else:
            reader = open_video(self.paths[index], backend=backend, threads=self.threads)
        try:
            clip = self.clip_sampler(reader.num_frames, reader.fps, rng)[0]
            if isinstance(reader, ArrayReader) and out is not None and out.shape[1] == 1:
                # (T, 1, H, W) and (T, H, W, 1) are the same bytes: a single-channel clip that
                # the transform leaves as it is (uint8, no resize nor warp) is read into place.
                frames = reader.read(clip, out=out[:, 0, :, :, None])
            else:
                frames = reader.read(clip)  # (T, H, W, C)
        finally:
            reader.close()
        if self.channels is not None and frames.shape[-1] != self.channels:
            raise DecodeError(
                f"{self.paths[index]}: frames have {frames.shape[-1]} channel(s), the data set "
                f"{self.channels} (data.channels, from the first training file); save every "
                "array with the same number of views"
            )
        if out is None or not isinstance(self.transform, ClipTransform):
            return self.transform(frames, rng)  # (T, C, H, W), or a dict with it as `input`
        return self.transform(frames, rng, out=torch.from_numpy(out))  # written into its slot


class ImageDataset(SampleDataset):
    """Image files -> `input` (C, H, W) float32; any PIL mode is converted to RGB."""

    def __init__(
        self,
        paths: Sequence[str],
        targets: np.ndarray,
        transform: Transform,
        max_attempts: int = 10,
    ) -> None:
        super().__init__(paths, targets, max_attempts)
        self.transform = transform

    def load(
        self, index: int, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> Tensor | dict[str, Tensor]:
        return self.transform(read_image(self.paths[index]), rng)  # (C, H, W)


def read_image(path: str) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, whatever its mode (CMYK, 16-bit, RGBA, L).

    An EXIF orientation tag is applied, so a phone photo is read as it is shown (as the video
    readers apply a video's display matrix). A 32-bit float image is taken to be in [0, 1].
    """
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode == "F":
                image = Image.fromarray(_float_to_8_bits(np.asarray(image), path))
            elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit greyscale: map 0..65535 to 0..255 (not clip at 255, nor stretch each
                # image to its own peak, which would change its brightness).
                array = np.asarray(image, dtype=np.float64)
                image = Image.fromarray(np.clip(np.rint(array / 257.0), 0, 255).astype(np.uint8))
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError as error:
        raise DecodeError(
            f"{path}: file not found; fix the manifest row or restore the file"
        ) from error
    except Image.DecompressionBombError as error:
        raise DecodeError(
            f"{path}: {error}; downscale the image (Pillow refuses images over twice "
            "PIL.Image.MAX_IMAGE_PIXELS)"
        ) from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DecodeError(
            f"{path}: not a readable image ({error}); re-export or remove it"
        ) from error


@functools.cache
def _numpy_holds(dtype: torch.dtype) -> bool:
    """Whether NumPy has `dtype` (not bfloat16 nor the float8 types)."""
    try:
        torch.empty(0, dtype=dtype).numpy()
    except TypeError:
        return False
    return True


class BatchItems(list):
    """A batch's items (dicts) whose `input`s are the rows of one batch tensor, `inputs`."""

    def __init__(self, items: list[dict], inputs: Tensor) -> None:
        super().__init__(items)
        self.inputs = inputs


def _batch_like(example: Tensor, count: int) -> Tensor:
    """An uninitialised `(count, *example.shape)` tensor of `example`'s dtype.

    In a DataLoader worker it lies in shared memory, as default_collate allocates its batches,
    so it reaches the main process without a copy. Elsewhere NumPy allocates it: the pages a
    freed batch leaves are reused by the next one, where `torch.empty` faulted in about 660 fresh
    pages per 9 MB batch (measured, 25x150x150 uint8 clips, batches of 16).
    """
    if get_worker_info() is not None:
        storage = example._typed_storage()._new_shared(example.numel() * count)
        return example.new(storage).resize_(count, *example.shape)
    return torch.from_numpy(np.empty((count, *example.shape), dtype=example.numpy().dtype))


def _in_their_slots(items: list[dict], inputs: Tensor) -> bool:
    """Whether item k's input is row k of `inputs`, for every k (and no row left over)."""
    return len(items) == len(inputs) and all(
        item["input"].data_ptr() == inputs[slot].data_ptr()
        and item["input"].shape == inputs.shape[1:]
        for slot, item in enumerate(items)
    )


def _float_to_8_bits(values: np.ndarray, path: str) -> np.ndarray:
    """A float image (mode F) in [0, 1], as float frames are everywhere in vidlearn, as uint8."""
    if not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
        raise DecodeError(
            f"{path}: a float image must hold values in [0, 1], found {values.min()} .. "
            f"{values.max()}; re-export it as 8- or 16-bit, or scale it to [0, 1]"
        )
    return np.rint(values * 255.0).astype(np.uint8)


def collate(items: list[dict]) -> dict:
    """Stack items into a batch; `skipped` SkipRecords are concatenated into one flat list.

    `BatchItems` (from `SampleDataset.__getitems__`) bring their batch of inputs, taken as it is.
    """
    skipped = [record for item in items for record in item["skipped"]]
    inputs = items.inputs if isinstance(items, BatchItems) else None
    if inputs is not None and not _in_their_slots(items, inputs):  # reordered or cut since
        inputs = None
    left = ("skipped",) if inputs is None else ("skipped", "input")
    batch = default_collate(
        [{key: value for key, value in item.items() if key not in left} for item in items]
    )
    if inputs is not None:  # in the items' key order
        batch = {key: inputs if key == "input" else batch.get(key) for key in items[0]}
    batch["skipped"] = skipped
    return batch


class HandOverCollate:
    """`collate` for a loader whose items are normalised after it (`normalise`: in the main
    process, or on the device): a batch whose inputs differ in dtype (uint8 and float frame
    arrays) is normalised item by item here, as items normalised in the worker are, and marked
    `NORMALISED`. Stacked as they came, the uint8 clips were cast into a float batch and then
    normalised as floats in [0, 1] (255x too large), or the float clips refused by a uint8 one."""

    def __init__(self, normalise: BatchNormalisation) -> None:
        self.normalise = normalise

    def __call__(self, items: list[dict]) -> dict:
        if len({item["input"].dtype for item in items}) < 2:
            return collate(items)
        for item in items:
            item["input"] = self.normalise(item["input"], item.pop("peak", None))
        return {**collate(items), NORMALISED: True}
