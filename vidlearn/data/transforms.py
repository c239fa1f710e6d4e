"""Clip and image transforms: resize, augment (one random draw per clip), normalise to tensors.

Pipelines are `[Resize(size, size)] + augment`, run by albumentations on uint8 frames (or float
frames in [0, 1]); normalisation `(x / max_pixel_value - mean) / std` then runs once on the
whole clip in torch, which is cheaper than albumentations' per-frame Normalize and handles both
dtypes: uint8 frames are divided by 255, float frames are taken to be in [0, 1] already.
Float arrays in another range (MRI) use `per_frame_max_norm`, which divides each frame by its
own maximum before augmentation (the cardiac cine recipe), in training and evaluation alike.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch import Tensor


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


def normalise(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """`(..., H, W, C)` uint8 or float in [0, 1] -> `(..., C, H, W)` float32, `(x - mean) / std`."""
    channels = frames.shape[-1]
    if len(mean) not in (1, channels) or len(std) not in (1, channels):
        raise ValueError(
            f"frames have {channels} channel(s) but data.mean has {len(mean)} and data.std "
            f"{len(std)} values; give one value per channel (or one for all)"
        )
    scale = 255.0 if frames.dtype == np.uint8 else 1.0
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(torch.float32).movedim(-1, -3)
    mean_tensor = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) * scale
    std_tensor = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1) * scale
    return (tensor - mean_tensor) / std_tensor


def max_normalise(frames: np.ndarray) -> np.ndarray:
    """Divide each frame `(T, H, W, C)` by its own maximum -> float32 in [0, 1]; black frames stay 0."""
    peaks = frames.reshape(len(frames), -1).max(axis=1).astype(np.float32)
    peaks[peaks <= 0] = 1.0
    return frames.astype(np.float32) / peaks[:, None, None, None]


class ClipTransform:
    """Resize, augment and normalise every frame of a clip with ONE random draw.

    `(T, H, W, C)` uint8 (or float in [0, 1]) -> `(T, C, size, size)` float32, C = 1, 3 or V.
    Frames go through albumentations as `image`, `image1`, ... (`additional_targets`), which
    shares the draw. Measured for a 16x128x171 clip resized to 112 with flip, affine and
    brightness/contrast on one core: 6.8 ms, vs 14 ms with `images=` and 50 ms with ReplayCompose.
    """

    def __init__(
        self,
        augment: Sequence[A.BasicTransform] | None,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        per_frame_max_norm: bool = False,
    ) -> None:
        self.mean, self.std, self.per_frame_max_norm = list(mean), list(std), per_frame_max_norm
        self.pipeline = A.Compose([A.Resize(size, size), *(augment or [])])
        self.random = bool(augment)
        self.frame_names: list[str] = []  # targets for frames 1..T-1, registered on first use

    def __call__(self, frames: np.ndarray) -> Tensor:
        if frames.ndim != 4:
            raise ValueError(f"ClipTransform expects frames (T, H, W, C), got shape {frames.shape}")
        if self.per_frame_max_norm:
            frames = max_normalise(frames)
        names = [f"image{i}" for i in range(1, len(frames))]
        if len(names) > len(self.frame_names):
            self.pipeline.add_targets({name: "image" for name in names[len(self.frame_names) :]})
            self.frame_names = names
        if self.random:
            seed_from_python_random(self.pipeline)
        out = self.pipeline(image=frames[0], **dict(zip(names, frames[1:], strict=True)))
        clip = np.stack([out["image"], *(out[name] for name in names)])  # (T, size, size, C)
        return normalise(clip, self.mean, self.std)  # (T, C, size, size)


class ImageTransform:
    """Resize (after optional PadToSquare), augment and normalise one image.

    `(H, W, C)` uint8 (or float in [0, 1]) -> `(C, size, size)` float32.
    """

    def __init__(
        self,
        augment: Sequence[A.BasicTransform] | None,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        pad_to_square: bool = False,
    ) -> None:
        self.mean, self.std = list(mean), list(std)
        padding = [PadToSquare()] if pad_to_square else []
        self.pipeline = A.Compose([*padding, A.Resize(size, size), *(augment or [])])
        self.random = bool(augment)

    def __call__(self, image: np.ndarray) -> Tensor:
        if image.ndim != 3:
            raise ValueError(f"ImageTransform expects an image (H, W, C), got shape {image.shape}")
        if self.random:
            seed_from_python_random(self.pipeline)
        return normalise(
            self.pipeline(image=image)["image"], self.mean, self.std
        )  # (C, size, size)


def seed_from_python_random(pipeline: A.Compose) -> None:
    """Draw the pipeline's seed from Python's `random`, which Lightning seeds per worker.

    Only augmenting pipelines draw, so evaluation leaves the training random stream untouched.

    albumentations 2 keeps its own generators, seeded from the OS unless told otherwise, so
    without this an augmented run could not be reproduced or resumed exactly.
    """
    pipeline.set_random_seed(random.getrandbits(32))
