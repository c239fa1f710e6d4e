"""`ClipAffine`: albumentations' Affine, warping a clip's frames 4 channels per OpenCV call.

A clip reaches the augmentation as its frames `(T, H, W, C)` (albumentations' `images` target,
one draw for every frame) or stacked as one `(H, W, T*C)` image (see
`vidlearn.data.transforms`). albumentations 2 warps an image of more than 4 channels in 4-channel
chunks (a last pair one channel at a time), which OpenCV warps with SIMD; the chunks are sliced
out of the interleaved image with NumPy's strided copies, 2.6 ms for a 25x150x150 uint8 clip. A
clip's frames are planes already: ClipAffine interleaves each group of 4 planes, warps it and
splits it back into the output planes, the same chunks, so the output equals `A.Affine`'s bit
for bit, at 0.67-0.69 ms against 0.84-0.91 ms for the former one `cv2.warpAffine` over all 25
channels with the clip's two transposes around it (OpenCV warps more than 4 channels in a scalar
loop; alternating rounds, 1 OpenCV thread, load 6.6 on 2 cores).

That former one-call warp did not quantise the sampling position; the chunked one quantises it to
1/32 pixel: |difference| <= 1 + D/16 grey levels, where D is the largest step between
neighbouring source pixels (`tests/data/test_clip_affine_properties.py`).
"""

from __future__ import annotations

import numbers
from typing import Any

import albumentations as A
import cv2
import numpy as np

from vidlearn.data.transforms import swap_leading_axes

# Interpolations OpenCV warps in at most 4 channels per call (an assertion refuses more).
FOUR_CHANNEL_INTERPOLATIONS = (cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)


def channel_groups(channels: int) -> list[tuple[int, int]]:
    """albumentations' chunks of a wide image: 4 channels at a time, a last pair one by one
    (`albucore.utils.maybe_process_in_chunks`); one group when there are at most 4."""
    if channels <= 4:
        return [(0, channels)]
    groups = [(start, min(start + 4, channels)) for start in range(0, channels, 4)]
    if channels % 4 == 2:
        groups[-1:] = [(channels - 2, channels - 1), (channels - 1, channels)]
    return groups


def warp_planes(
    planes: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int],
    flags: int,
    border: int,
    fill: float,
) -> np.ndarray:
    """`(K, H, W)` planes -> `(K, height, width)` warped by the 2x3 `matrix`, in
    `channel_groups(K)`: each group interleaved into one image, warped, and split back.

    `size` is (height, width); `fill` is one value for every channel. In: OpenCV's transpose;
    out: `cv2.split` into the output planes (0.67-0.69 ms per 25x150x150 uint8 clip against
    0.99-1.04 with `cv2.merge` in and 0.77-0.79 with a transpose out, alternating, 1 thread).
    """
    height, width = size
    planes = np.ascontiguousarray(planes)
    out = np.empty((len(planes), height, width), dtype=planes.dtype)
    options = dict(flags=flags, borderMode=border, borderValue=(fill,) * 4)
    for start, stop in channel_groups(len(planes)):
        if stop - start == 1:
            cv2.warpAffine(planes[start], matrix, (width, height), dst=out[start], **options)
            continue
        group = planes[start:stop].reshape(stop - start, -1, 1)  # (n, H*W, 1)
        image = swap_leading_axes(group).reshape(*planes.shape[1:], stop - start)  # (H, W, n)
        cv2.split(cv2.warpAffine(image, matrix, (width, height), **options), list(out[start:stop]))
    return out


_IDENTITY = np.eye(3)
# np.allclose's test, |matrix - I| <= atol + rtol * |I| (its defaults), without its overhead
# (0.2 ms a call, a tenth of a clip's warp): the same answer, NaN included (never close).
_IDENTITY_TOLERANCE = 1e-8 + 1e-5 * _IDENTITY


def _near_identity(matrix: np.ndarray) -> bool:
    """Whether the 3x3 `matrix` is the identity as `np.allclose` (albumentations' test) says."""
    return bool((np.abs(matrix - _IDENTITY) <= _IDENTITY_TOLERANCE).all())


class ClipAffine(A.Affine):
    """`albumentations.Affine` (same arguments, draws and output) warping planes of the clip.

    A per-channel `fill` (a sequence of values), and bicubic or Lanczos interpolation, keep
    albumentations' own warp. `vidlearn.data.transforms.Augmentation` hands a pipeline made of
    ClipAffine the clip's frames (`images`), which need no stacking (`warps_frames = True`).
    """

    warps_frames = True

    def _own_warp(self) -> bool:
        return self.interpolation not in FOUR_CHANNEL_INTERPOLATIONS and isinstance(
            self.fill, numbers.Real
        )

    def _warp(self, planes: np.ndarray, matrix: np.ndarray, output_shape: tuple) -> np.ndarray:
        size = (int(np.round(output_shape[0])), int(np.round(output_shape[1])))
        fill = float(self.fill)
        return warp_planes(planes, matrix[:2], size, self.interpolation, self.border_mode, fill)

    def apply(
        self, img: np.ndarray, matrix: np.ndarray, output_shape: tuple[int, int], **params: Any
    ) -> np.ndarray:
        if img.ndim != 3 or img.shape[2] <= 4 or not self._own_warp():
            return super().apply(img, matrix=matrix, output_shape=output_shape, **params)
        if _near_identity(matrix):  # as albumentations: no warp, no copy
            return img
        rows, columns, channels = img.shape
        planes = swap_leading_axes(img.reshape(rows * columns, channels, 1))  # (K, H*W, 1)
        warped = self._warp(planes.reshape(channels, rows, columns), matrix, output_shape)
        height, width = warped.shape[1:]
        stacked = swap_leading_axes(warped.reshape(channels, height * width, 1))
        return stacked.reshape(height, width, channels)

    def apply_to_images(
        self, images: np.ndarray, matrix: np.ndarray, output_shape: tuple, **params: Any
    ) -> np.ndarray:
        """A clip's frames `(T, H, W[, C])` -> warped alike, same layout; single-channel frames
        are the planes themselves (no copy before the warp)."""
        if images.ndim == 3:  # grayscale frames without their channel axis
            return self.apply_to_images(images[..., None], matrix, output_shape, **params)[..., 0]
        frames, rows, columns, channels = images.shape
        if channels > 1 or not self._own_warp():
            stacked = swap_leading_axes(images.reshape(frames, rows * columns, channels))
            stacked = stacked.reshape(rows, columns, frames * channels)
            warped = self.apply(stacked, matrix=matrix, output_shape=output_shape, **params)
            height, width = warped.shape[:2]
            out = swap_leading_axes(warped.reshape(height * width, frames, channels))
            return out.reshape(frames, height, width, channels)
        if _near_identity(matrix):
            return images
        return self._warp(images.reshape(frames, rows, columns), matrix, output_shape)[..., None]
