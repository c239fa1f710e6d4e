"""Clip and image transforms: resize, augment (one random draw per clip), normalise to tensors.

A clip `(T, H, W, C)` is stacked as one `(H, W, T*C)` image and goes through each operation in
ONE call: one resize, one albumentations pipeline (so every frame gets the same random
parameters by construction), in the array's own dtype (uint8 for videos). Normalisation
`(x / max_pixel_value - mean) / std` is the last step, fused into one float32 pass over the
clip: uint8 frames are divided by 255, float frames are taken to be in [0, 1] already.
Resizing a clip that already has the size (a frame cache's frames) costs nothing.

`per_frame_max_norm` divides each frame by its own maximum (the cardiac cine recipe), in training
and evaluation alike. The peaks are read from the input frames (before resizing); the division is
folded into the final pass when every augmentation is geometric (warps and flips are linear in
pixel values, so dividing first or last gives the same clip), and done first otherwise, so
photometric augmentations see frames in [0, 1] as they always did. With normalisation on the
device the peaks travel with the clip (`peak`) and the device divides by them in its one pass.

The random draws come from the item's generator `rng` (see `vidlearn.data.sample_keys`), never
from the worker's own streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch import Tensor

from vidlearn.errors import ConfigError


class PadToSquare(A.ImageOnlyTransform):
    """Pad the shorter side by repeating border pixels so the image is square, content centred."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p=p)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:  # (H, W, C) -> (S, S, C)
        height, width = img.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        padding = [(top, side - height - top), (left, side - width - left)] + [(0, 0)] * (
            img.ndim - 2
        )
        return np.pad(img, padding, mode="edge")


def normalise(
    frames: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    frame_peaks: np.ndarray | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """`(..., H, W, C)` uint8 or float in [0, 1] -> `(..., C, H, W)` float32, `(x - mean) / std`.

    `frame_peaks` `(T,)`, for a clip `(T, H, W, C)`, divides each frame by its peak in the
    same pass (one float32 copy of the clip, then in-place arithmetic). `out`: written and
    returned instead of a new tensor (see `normalise_tensor`).
    """
    if min(frames.strides) < 0:  # a flip's view: torch cannot wrap negative strides
        frames = np.ascontiguousarray(frames)
    view = torch.from_numpy(frames).permute(*_channels_first(frames.ndim))  # (..., C, H, W)
    peaks = None if frame_peaks is None else torch.from_numpy(frame_peaks.astype(np.float32))
    return normalise_tensor(view, mean, std, peaks, out)


def normalise_tensor(
    inputs: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    frame_peaks: Tensor | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """`(..., C, H, W)` uint8 or float in [0, 1], on any device -> float32 `(x - mean) / std`.

    The one float32 pass of the worker path and of `BatchNormalisation` on the device: the same
    operations in the same order, so both give the same numbers. `out` (float32, the inputs'
    shape and device: a clip's slot in a batch) is written and returned instead of a new tensor.
    """
    channels = inputs.shape[-3]
    if len(mean) not in (1, channels) or len(std) not in (1, channels):
        raise ConfigError(
            f"frames have {channels} channel(s) but data.mean has {len(mean)} and data.std "
            f"{len(std)} values; give one value per channel (or one for all)"
        )
    # Peaks are in pixel units already: x / peak is in [0, 1] whatever the dtype.
    scale = 255.0 if inputs.dtype == torch.uint8 and frame_peaks is None else 1.0
    std_array = np.asarray(std, dtype=np.float32) * scale  # (C,) or (1,)
    multiplier = np.broadcast_to(1.0 / std_array, (channels,)).astype(np.float32)
    offset = np.broadcast_to(np.asarray(mean, np.float32) * scale / std_array, (channels,))
    factor = torch.from_numpy(multiplier).to(inputs.device).view(-1, 1, 1)  # (C, 1, 1)
    if frame_peaks is not None:
        # (T,) for a clip, (B, T) for a batch -> (..., T, C, 1, 1)
        peaks = frame_peaks.to(device=inputs.device, dtype=torch.float32)
        factor = factor / peaks.view(*peaks.shape, 1, 1, 1)
    # One float32 copy, then in place. (torch.mul(uint8, float32, out=...) in one pass was
    # measured 2x slower on the CPU: its mixed-dtype loop is not vectorised.)
    if out is None:
        out = torch.empty(inputs.shape, dtype=torch.float32, device=inputs.device)
    _check_out(out, inputs.shape, torch.float32)
    return (
        out.copy_(inputs)
        .mul_(factor)
        .sub_(torch.from_numpy(offset.astype(np.float32)).to(inputs.device).view(-1, 1, 1))
    )


# A batch's key saying its `input` is normalised already, though its loader hands clips over to
# a BatchNormalisation (`vidlearn.data.datasets.HandOverCollate`): those are not normalised again.
NORMALISED = "normalised"


class BatchNormalisation:
    """Normalise a uint8 batch `(B, [T,] C, H, W)` on its device, as the worker path would.

    Given to the task (`normalise`) when `data.normalise_on_device` is set: workers then collate
    uint8, a quarter of the float32 bytes, and the float conversion happens once per batch.
    `frame_peaks` `(B, T)` float32 (the batch's `peak`, with `per_frame_max_norm`) divides each
    frame by its own peak in the same pass, as the worker path does.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, inputs: Tensor, frame_peaks: Tensor | None = None) -> Tensor:
        return normalise_tensor(inputs, self.mean, self.std, frame_peaks)


def is_slot(made: np.ndarray, slot: np.ndarray) -> bool:
    """Whether `made` (of `slot`'s shape and dtype) is `slot` itself, so a batch needs no copy
    of it: a view that merely shares its memory (transposed, a frame repeated by a zero
    stride) holds other values there."""
    return made.flags.c_contiguous and made.ctypes.data == slot.ctypes.data


def _check_out(out: Tensor, shape: Sequence[int], dtype: torch.dtype) -> None:
    """ValueError unless `out` can hold a result of `shape` and `dtype` (no broadcasting)."""
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype:
        raise ValueError(
            f"out is {out.dtype} {tuple(out.shape)}, the result {dtype} {tuple(shape)}: items of "
            "one batch must have the same shape and dtype"
        )


def _channels_first(ndim: int) -> tuple[int, ...]:
    """Axis order moving the last axis before the two before it: (..., H, W, C) -> (..., C, H, W)."""
    return (*range(ndim - 3), ndim - 1, ndim - 3, ndim - 2)


def peaks_of(frames: np.ndarray) -> np.ndarray:
    """Each frame's maximum `(T,)` of a clip `(T, H, W, C)` as float32; black frames give 1."""
    peaks = frames.reshape(len(frames), -1).max(axis=1).astype(np.float32)
    peaks[peaks <= 0] = 1.0
    return peaks


def max_normalise(frames: np.ndarray, frame_peaks: np.ndarray | None = None) -> np.ndarray:
    """Divide each frame `(T, H, W, C)` by its own maximum (or by `frame_peaks` `(T,)`) ->
    float32 in [0, 1]; black frames stay 0."""
    peaks = peaks_of(frames) if frame_peaks is None else frame_peaks
    return frames.astype(np.float32) / peaks[:, None, None, None]


# The most channels OpenCV's Python binding takes as one image (measured with opencv 5.0: 128;
# 129 is read as a 3-D matrix); longer stacked clips are resized in slices.
_MAX_CHANNELS = 128


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """`(H, W, K)` -> `(size, size, K)` bilinear, any K (a clip stacked as channels); no copy if sized."""
    return resize_to(image, size, size)


def resize_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """`(H, W, K)` -> `(height, width, K)` bilinear, any K; no copy if already that size."""
    if image.shape[:2] == (height, width):
        return image
    channels = image.shape[2]
    if channels > _MAX_CHANNELS:
        return np.concatenate(
            [
                resize_to(np.ascontiguousarray(image[..., i : i + _MAX_CHANNELS]), height, width)
                for i in range(0, channels, _MAX_CHANNELS)
            ],
            axis=2,
        )
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return out.reshape(height, width, channels)  # cv2 drops a single channel's axis


# Element sizes (bytes) cv2.transpose moves (opencv 5.0); others are transposed by NumPy.
_CV2_TRANSPOSE_BYTES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


def swap_leading_axes(array: np.ndarray) -> np.ndarray:
    """`(A, B, K)` -> a C-contiguous `(B, A, K)` copy: a clip's `(T, H*W, C)` to `(H*W, T, C)`
    and back.

    OpenCV's blocked transpose is about 8x faster than NumPy's strided copy for a uint8 clip
    (0.09 vs 0.7 ms for 25x150x150, measured: `experiments/bench_arrays.py`); the values are the
    same, so it is used wherever OpenCV moves the element (K values of a uint8 or float32 clip).
    """
    first, second, width = array.shape
    if array.dtype in (np.uint8, np.float32) and width * array.itemsize in _CV2_TRANSPOSE_BYTES:
        matrix = np.ascontiguousarray(array if width > 1 else array[..., 0])
        return cv2.transpose(matrix).reshape(second, first, width)
    return np.ascontiguousarray(array.transpose(1, 0, 2))


class Augmentation:
    """An albumentations pipeline run once on an image, seeded from the item's generator.

    albumentations 2 keeps its own generators, seeded from the OS unless told otherwise: the
    seed is drawn from `rng` on every call so a run can be reproduced and resumed exactly.
    """

    def __init__(self, transforms: Sequence[A.BasicTransform]) -> None:
        self.pipeline = A.Compose(list(transforms))
        self.geometric = all(isinstance(t, A.DualTransform) for t in transforms)
        # Transforms that warp a clip's frames (albumentations' `images`) as fast as its stacked
        # image (vidlearn.data.clip_affine.ClipAffine): the clip then needs no stacking.
        self.takes_frames = all(getattr(t, "warps_frames", False) for t in transforms)

    def frames(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A clip's frames `(T, H, W, C)` -> augmented alike `(T, H', W', C)`, with the draw
        `__call__` makes for the clip stacked as one image (the same seed, the same shape)."""
        self.pipeline.set_random_seed(int(rng.integers(2**32)))
        return self.pipeline(images=frames)["images"]

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seed = int(rng.integers(2**32))
        channels = image.shape[2]
        if channels <= _MAX_CHANNELS:
            self.pipeline.set_random_seed(seed)
            return self.pipeline(image=image)["image"]
        # More channels than OpenCV takes (a long clip): slices with the same seed draw the
        # same parameters (they depend on the image size only), so every frame still moves alike.
        # Equal slices: a last one of 4 channels or fewer would take OpenCV's 1-4 channel paths,
        # which round differently from its path over more channels.
        slices = []
        for part in np.array_split(np.arange(channels), -(-channels // _MAX_CHANNELS)):
            self.pipeline.set_random_seed(seed)
            sliced = np.ascontiguousarray(image[..., part[0] : part[-1] + 1])
            slices.append(self.pipeline(image=sliced)["image"])
        return np.concatenate(slices, axis=2)


def _require_rng(rng: np.random.Generator | None, name: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{name} augments, so it needs the item's generator `rng`")
    return rng


class ClipTransform:
    """Resize, augment and normalise a clip with ONE random draw and one call per operation.

    `(T, H, W, C)` uint8 (or float) -> `(T, C, size, size)` float32, C = 1, 3 or V. With
    `normalise=False`, the clip stays in the input's dtype (normalised later by
    `BatchNormalisation`), and with `per_frame_max_norm` too the call returns
    `{"input": clip, "peak": (T,) float32}`: each frame's peak, read before resizing as on the
    worker path, travels with the clip. `rng` is needed only when `augment` is not empty.
    `frame_peaks` `(T,)`: the peaks of the whole frames a crop was cut from (test-time crops,
    `vidlearn.inference.views`), which training divided by; default: read from `frames`.
    """

    def __init__(
        self,
        augment: Sequence[A.BasicTransform] | None,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        per_frame_max_norm: bool = False,
        normalise: bool = True,
    ) -> None:
        self.size, self.mean, self.std = size, list(mean), list(std)
        self.per_frame_max_norm, self.normalise = per_frame_max_norm, normalise
        self.augmentation = Augmentation(augment) if augment else None
        # Peaks divide last only when no photometric op would see un-normalised frames.
        self.divide_last = self.augmentation is None or self.augmentation.geometric
        if per_frame_max_norm and not normalise and not self.divide_last:
            raise ConfigError(
                "data.normalise_on_device=true with data.per_frame_max_norm=true needs geometric "
                "augmentations only (the augment config has a photometric one, which must see "
                "max-normalised frames in the worker); set data.normalise_on_device=false, or "
                "pick an augment config of warps and flips (e.g. augment=hms_cine)"
            )

    def __call__(
        self,
        frames: np.ndarray,
        rng: np.random.Generator | None = None,
        frame_peaks: np.ndarray | None = None,
        out: Tensor | None = None,
    ) -> Tensor | dict[str, Tensor]:
        """`out`: the clip's slot in a batch `(T, C, size, size)`, in the output's dtype: the
        clip is written there instead of into a new tensor, so the batch needs no stacking."""
        if frames.ndim != 4:
            raise ValueError(f"ClipTransform expects frames (T, H, W, C), got shape {frames.shape}")
        peaks = None
        if self.per_frame_max_norm:
            if self.divide_last:
                peaks = peaks_of(frames) if frame_peaks is None else frame_peaks  # (T,)
            else:
                frames = max_normalise(frames, frame_peaks)
        clip = self._resized_augmented(frames, rng)  # (T, size, size, C)
        if out is not None and not self._fits(out, clip):
            out = None  # made anew: a batch of clips that differ is refused by its collate
        if not self.normalise:  # (T, C, size, size) in the array's dtype, for BatchNormalisation
            chw = clip.transpose(0, 3, 1, 2)
            if out is None:
                inputs = torch.from_numpy(np.ascontiguousarray(chw))  # no copy when C = 1
            else:
                inputs = out
                slot = out.numpy()
                if not is_slot(chw, slot):  # unless read into it; copyto handles overlaps
                    np.copyto(slot, chw)
            return inputs if peaks is None else {"input": inputs, "peak": torch.from_numpy(peaks)}
        return normalise(clip, self.mean, self.std, peaks, out)  # (T, C, size, size)

    def _fits(self, out: Tensor, clip: np.ndarray) -> bool:
        """Whether `out` has the shape and dtype this call's result `(T, C, size, size)` has."""
        length, height, width, channels = clip.shape
        dtype = torch.float32 if self.normalise else torch.from_numpy(clip[:0, :0, :0, :0]).dtype
        return tuple(out.shape) == (length, channels, height, width) and out.dtype == dtype

    def _resized_augmented(self, frames: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """`(T, H, W, C)` -> `(T, size, size, C)`, C-contiguous (`frames` itself when nothing had
        to be done, so the caller's one copy is the only one)."""
        length, height, width, channels = frames.shape
        if (height, width) != (self.size, self.size):
            # Frame by frame, then stacked: stacking first copies the whole full-size clip into
            # the (H, W, T*C) layout (16 frames of 320x240: 6.8 ms CPU against 1.8 ms); bilinear
            # resizing works per channel: uint8 pixels are the same, float32 within rounding.
            frames = np.stack([resize(frame, self.size) for frame in frames])  # (T, size, size, C)
            height = width = self.size
        if self.augmentation is None:
            return frames
        rng = _require_rng(rng, "ClipTransform")
        frames = np.ascontiguousarray(frames)
        if self.augmentation.takes_frames:
            return self.augmentation.frames(frames, rng)
        rows = frames.reshape(length, height * width, channels)
        stacked = swap_leading_axes(rows).reshape(height, width, length * channels)
        stacked = self.augmentation(stacked, rng)  # (size, size, T*C)
        rows = swap_leading_axes(stacked.reshape(self.size**2, length, channels))
        return rows.reshape(length, self.size, self.size, channels)


class ImageTransform:
    """Resize (after optional PadToSquare), augment and normalise one image.

    `(H, W, C)` uint8 (or float in [0, 1]) -> `(C, size, size)` float32 (with
    `normalise=False`, in the image's dtype). `rng` is needed only when `augment` is not empty.
    """

    def __init__(
        self,
        augment: Sequence[A.BasicTransform] | None,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        pad_to_square: bool = False,
        normalise: bool = True,
    ) -> None:
        self.size, self.mean, self.std, self.normalise = size, list(mean), list(std), normalise
        self.pad = PadToSquare() if pad_to_square else None
        self.augmentation = Augmentation(augment) if augment else None

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> Tensor:
        if image.ndim != 3:
            raise ValueError(f"ImageTransform expects an image (H, W, C), got shape {image.shape}")
        if self.pad is not None:
            image = self.pad.apply(image)
        image = resize(image, self.size)  # (size, size, C)
        if self.augmentation is not None:
            image = self.augmentation(image, _require_rng(rng, "ImageTransform"))
        if not self.normalise:  # (C, size, size) in the image's dtype, for BatchNormalisation
            return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return normalise(image, self.mean, self.std)  # (C, size, size)
