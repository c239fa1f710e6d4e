"""ClipAffine (4-channel warps of a clip's frames) against albumentations' Affine, for any affine
parameters and clip shape, and against the one-call warp over all channels it replaces.

Tolerance, stated in vidlearn/data/clip_affine.py: ClipAffine warps the channels in
albumentations' own chunks (4 at a time, a last pair one by one), so it equals `A.Affine` bit
for bit. The former one-call warp over all channels (OpenCV's generic path) did not quantise the
sampling position, the chunked path quantises it to 1/32 pixel: |ClipAffine - one call| <= 1 +
D/16 grey levels, where D is the largest step between neighbouring source pixels.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vidlearn.data.clip_affine import ClipAffine, _near_identity


def largest_neighbour_step(image: np.ndarray) -> int:
    """D: the largest |difference| between pixels one step apart, across, down or diagonally."""
    pixels = image.astype(np.int32)
    steps = [
        np.abs(np.diff(pixels, axis=0)),
        np.abs(np.diff(pixels, axis=1)),
        np.abs(pixels[1:, 1:] - pixels[:-1, :-1]),
        np.abs(pixels[1:, :-1] - pixels[:-1, 1:]),
    ]
    return max((int(step.max()) for step in steps if step.size), default=0)


class OneCallAffine(A.Affine):
    """The former ClipAffine: one `cv2.warpAffine` over every channel (at most 128)."""

    def apply(
        self, img: np.ndarray, matrix: np.ndarray, output_shape: tuple, **params
    ) -> np.ndarray:
        if np.allclose(matrix, np.eye(3)):
            return img
        height, width = (int(np.round(side)) for side in output_shape[:2])
        return cv2.warpAffine(
            img,
            matrix[:2],
            (width, height),
            flags=self.interpolation,
            borderMode=self.border_mode,
            borderValue=(float(self.fill),) * 4,
        ).reshape(height, width, -1)


affine_arguments = st.fixed_dictionaries(
    {
        "rotate": st.tuples(st.floats(-45, 0), st.floats(0, 45)),
        "translate_percent": st.tuples(st.floats(-0.2, 0), st.floats(0, 0.2)),
        "scale": st.tuples(st.floats(0.7, 1.0), st.floats(1.0, 1.4)),
    }
)


def random_image(
    rng: np.random.Generator, shape: tuple[int, ...], smooth: bool, dtype: type = np.uint8
) -> np.ndarray:
    """Noise, or a cine-like image (steps of a few grey levels); float32 in [0, 1]."""
    image = rng.integers(0, 256, shape)
    if smooth:
        image = np.cumsum(rng.integers(0, 4, shape), axis=-2).clip(0, 255)
    return image.astype(np.uint8) if dtype is np.uint8 else (image / 255).astype(np.float32)


def warped(transform: A.BasicTransform, seed: int, **data: np.ndarray) -> np.ndarray:
    pipeline = A.Compose([transform])
    pipeline.set_random_seed(seed)
    return pipeline(**data)[next(iter(data))]


@settings(max_examples=30, deadline=None)
@given(
    arguments=affine_arguments,
    channels=st.integers(1, 90),
    height=st.integers(3, 41),
    width=st.integers(3, 41),
    smooth=st.booleans(),
    floats=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@example(  # 25 frames: six 4-channel warps and a last single channel
    arguments={"rotate": (-25, 25), "translate_percent": (-0.1, 0.1), "scale": (1.0, 1.0)},
    channels=25,
    height=20,
    width=30,
    smooth=False,
    floats=False,
    seed=3,
)
def test_clip_affine_is_albumentations_affine_bit_for_bit(
    arguments: dict, channels: int, height: int, width: int, smooth: bool, floats: bool, seed: int
) -> None:
    """Caught (planted): the last two channels warped together (albumentations warps a last pair
    one by one), and `dsize=(height, width)` (wrong shape on non-square frames)."""
    dtype = np.float32 if floats else np.uint8
    image = random_image(np.random.default_rng(seed), (height, width, channels), smooth, dtype)
    expected = warped(A.Affine(**arguments, p=1.0), seed, image=image)
    ours = warped(ClipAffine(**arguments, p=1.0), seed, image=image)
    assert ours.shape == expected.shape == image.shape and ours.dtype == dtype
    assert np.array_equal(ours, expected)


@settings(max_examples=30, deadline=None)
@given(
    arguments=affine_arguments,
    frames=st.integers(1, 30),
    channels=st.integers(1, 3),
    height=st.integers(3, 33),
    width=st.integers(3, 33),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_clip_given_as_frames_is_warped_as_its_stacked_image(
    arguments: dict, frames: int, channels: int, height: int, width: int, seed: int
) -> None:
    """`images=` (T, H, W, C), the frames of a clip, draw the parameters of the stacked `(H, W,
    T*C)` image and come out as its frames.

    Caught (planted): frames warped in groups of 4 from the first plane of each group only
    (every group a copy of its first frame)."""
    clip = random_image(np.random.default_rng(seed), (frames, height, width, channels), False)
    stacked = np.ascontiguousarray(clip.transpose(1, 2, 0, 3)).reshape(height, width, -1)
    expected = warped(A.Affine(**arguments, p=1.0), seed, image=stacked)
    ours = warped(ClipAffine(**arguments, p=1.0), seed, images=clip)
    assert ours.shape == clip.shape and ours.flags.c_contiguous
    assert np.array_equal(ours.transpose(1, 2, 0, 3).reshape(stacked.shape), expected)


@settings(max_examples=30, deadline=None)
@given(
    arguments=affine_arguments,
    channels=st.integers(5, 60),
    height=st.integers(3, 41),
    width=st.integers(3, 41),
    smooth=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_clip_affine_is_the_former_one_call_warp_within_rounding(
    arguments: dict, channels: int, height: int, width: int, smooth: bool, seed: int
) -> None:
    """The stated tolerance against the warp the loader used before: |difference| <= 1 + D/16.

    Caught (planted): INTER_NEAREST in place of the configured bilinear interpolation (off by up
    to D/2)."""
    image = random_image(np.random.default_rng(seed), (height, width, channels), smooth)
    expected = warped(OneCallAffine(**arguments, p=1.0), seed, image=image)
    ours = warped(ClipAffine(**arguments, p=1.0), seed, image=image)
    difference = np.abs(ours.astype(np.int32) - expected.astype(np.int32))
    assert difference.max() <= 1 + largest_neighbour_step(image) / 16


@settings(max_examples=10, deadline=None)
@given(channels=st.integers(129, 300), seed=st.integers(0, 2**32 - 1))
def test_clips_wider_than_opencvs_128_channels_are_warped_alike_in_every_slice(
    channels: int, seed: int
) -> None:
    """Caught (a real defect, before the fix): 129 channels were warped as 128 + 1, and the
    1-channel slice took OpenCV's 1/32-pixel path, so the last frame moved differently."""
    frame = np.random.default_rng(seed).integers(0, 256, (12, 14, 1), dtype=np.uint8)
    image = np.repeat(frame, channels, axis=2)  # every channel the same frame
    pipeline = A.Compose([ClipAffine(rotate=(-30, 30), translate_percent=(-0.1, 0.1), p=1.0)])
    pipeline.set_random_seed(seed)
    out = pipeline(image=image)["image"]
    assert out.shape == image.shape and (out == out[..., :1]).all()


@pytest.mark.parametrize("interpolation", [cv2.INTER_CUBIC, cv2.INTER_LANCZOS4])
def test_interpolations_opencv_warps_in_4_channels_only_keep_albumentations_warp(
    interpolation: int,
) -> None:
    """OpenCV refuses bicubic and Lanczos warps of over 4 channels in one call: ClipAffine
    failed with an assertion on a 25-frame clip (before the fix) where Affine warps in chunks."""
    image = np.random.default_rng(0).integers(0, 256, (12, 14, 25), dtype=np.uint8)
    arguments = {"rotate": (-30, 30), "interpolation": interpolation, "p": 1.0}
    pipelines = [A.Compose([A.Affine(**arguments)]), A.Compose([ClipAffine(**arguments)])]
    for pipeline in pipelines:
        pipeline.set_random_seed(1)
    expected, ours = (pipeline(image=image)["image"] for pipeline in pipelines)
    assert np.array_equal(ours, expected)


@settings(max_examples=30, deadline=None)
@given(
    entry=st.integers(0, 8),
    offset=st.one_of(st.just(0.0), st.floats(-1e-3, 1e-3), st.sampled_from([np.nan, np.inf])),
)
@example(entry=0, offset=5e-6)  # within rtol on the diagonal, beyond atol
@example(entry=1, offset=5e-6)  # beyond atol off the diagonal
def test_the_identity_test_answers_as_numpys_allclose(entry: int, offset: float) -> None:
    """ClipAffine skips the warp exactly when albumentations' `np.allclose(matrix, I)` would.

    Caught (planted): leaving out the relative tolerance (`1e-8` alone)."""
    matrix = np.eye(3)
    matrix.flat[entry] += offset
    assert _near_identity(matrix) == np.allclose(matrix, np.eye(3))
