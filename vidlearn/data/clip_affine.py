"""`ClipAffine`: albumentations' Affine, warping every channel of a stacked clip in ONE OpenCV call.

A clip reaches the augmentation as one `(H, W, T*C)` image (see `vidlearn.data.transforms`).
albumentations 2 warps an image of more than 4 channels in 4-channel chunks (OpenCV's SIMD
path), which cost 2.6 ms for a 25x150x150 clip against 0.8 ms for one `cv2.warpAffine` over all
25 channels (measured: `experiments/bench_arrays.py`). OpenCV takes up to 128 channels in one
call (129 is refused); wider clips are warped in equal slices of at most 128.

The parameters are drawn by `A.Affine` itself (same arguments, same draws for the same seed);
only the warp call differs, and with it the rounding. OpenCV's 1-4 channel path quantises the
sampling position to 1/32 pixel, its generic path (over 4 channels) does not: measured against
a float64 warp, the one-call warp is within 0.5 grey levels (rounding), the chunked one within
0.5 + D/16, where D is the largest step between neighbouring source pixels (up to 7 levels on
noise, at most 3 on a smooth image). `tests/data/test_clip_affine_properties.py` holds
|one call - chunked| <= 1 + D/16 for any parameters and clip shape.
"""

from __future__ import annotations

import numbers
from typing import Any

import albumentations as A
import cv2
import numpy as np

# The most channels cv2.warpAffine takes in one call (opencv 5.0: 128; 129 fails an assertion).
MAX_WARP_CHANNELS = 128
# Interpolations OpenCV warps in at most 4 channels per call (an assertion refuses more).
FOUR_CHANNEL_INTERPOLATIONS = (cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)


def warp_all_channels(
    image: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int],
    flags: int,
    border: int,
    fill: float,
) -> np.ndarray:
    """`(H, W, K)` -> `(height, width, K)` warped by the 2x3 `matrix`, one call per 128 channels.

    `size` is (height, width); `fill` is one value for every channel (OpenCV repeats a border
    scalar every 4 channels, so it is given as 4 equal values).
    """
    height, width = size
    # Equal slices (over 64 channels each when there are several): a short last slice of at
    # most 4 channels would take OpenCV's other path and round differently from the rest.
    slices = np.array_split(np.arange(image.shape[2]), -(-image.shape[2] // MAX_WARP_CHANNELS))
    parts = [
        cv2.warpAffine(
            np.ascontiguousarray(image[..., part[0] : part[-1] + 1]),
            matrix,
            (width, height),
            flags=flags,
            borderMode=border,
            borderValue=(fill,) * 4,
        ).reshape(height, width, -1)  # cv2 drops a single channel's axis
        for part in slices
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


_IDENTITY = np.eye(3)
# np.allclose's test, |matrix - I| <= atol + rtol * |I| (its defaults), without its overhead
# (0.2 ms a call, a tenth of a clip's warp): the same answer, NaN included (never close).
_IDENTITY_TOLERANCE = 1e-8 + 1e-5 * _IDENTITY


def _near_identity(matrix: np.ndarray) -> bool:
    """Whether the 3x3 `matrix` is the identity as `np.allclose` (albumentations' test) says."""
    return bool((np.abs(matrix - _IDENTITY) <= _IDENTITY_TOLERANCE).all())


class ClipAffine(A.Affine):
    """`albumentations.Affine` (same arguments and draws) with one warp over all channels.

    A per-channel `fill` (a sequence of values), and bicubic or Lanczos interpolation (which
    OpenCV warps 4 channels at a time), keep albumentations' own chunked warp.
    """

    def apply(
        self, img: np.ndarray, matrix: np.ndarray, output_shape: tuple[int, int], **params: Any
    ) -> np.ndarray:
        chunked = self.interpolation in FOUR_CHANNEL_INTERPOLATIONS
        if img.ndim != 3 or chunked or not isinstance(self.fill, numbers.Real):
            return super().apply(img, matrix=matrix, output_shape=output_shape, **params)
        if _near_identity(matrix):  # as albumentations: no warp, no copy
            return img
        size = (int(np.round(output_shape[0])), int(np.round(output_shape[1])))
        return warp_all_channels(
            img, matrix[:2], size, self.interpolation, self.border_mode, float(self.fill)
        )
