"""ClipAffine (one OpenCV warp over all channels) against albumentations' Affine (4-channel
chunks, the former path), for any affine parameters and clip shape.

Tolerance, stated in vidlearn/data/clip_affine.py: both warps are drawn with the same
parameters, so they differ by rounding only. albumentations' path quantises the sampling
position to 1/32 pixel per axis, so it is off the exact bilinear warp by at most 0.5 + D/16 grey
levels, where D is the largest step between neighbouring source pixels; the one-call warp is
exact to rounding (0.5). So |ClipAffine - Affine| <= 1 + D/16 everywhere.
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


affine_arguments = st.fixed_dictionaries(
    {
        "rotate": st.tuples(st.floats(-45, 0), st.floats(0, 45)),
        "translate_percent": st.tuples(st.floats(-0.2, 0), st.floats(0, 0.2)),
        "scale": st.tuples(st.floats(0.7, 1.0), st.floats(1.0, 1.4)),
    }
)


@settings(max_examples=30, deadline=None)
@given(
    arguments=affine_arguments,
    frames=st.integers(1, 40),
    channels=st.integers(1, 3),
    height=st.integers(3, 41),
    width=st.integers(3, 41),
    smooth=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_warp_over_all_channels_is_the_chunked_warp_within_rounding(
    arguments: dict, frames: int, channels: int, height: int, width: int, smooth: bool, seed: int
) -> None:
    """Caught (planted): `dsize=(height, width)` in warp_all_channels (wrong shape on non-square
    frames) and INTER_NEAREST in place of the configured bilinear interpolation (off by up to
    D/2)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, frames * channels), dtype=np.uint8)
    if smooth:  # a cine-like image: steps of a few grey levels
        image = np.cumsum(rng.integers(0, 4, image.shape), axis=1).clip(0, 255).astype(np.uint8)
    chunked, one_call = (
        A.Compose([A.Affine(**arguments, p=1.0)]),
        A.Compose([ClipAffine(**arguments, p=1.0)]),
    )
    chunked.set_random_seed(seed)
    one_call.set_random_seed(seed)
    expected, ours = chunked(image=image)["image"], one_call(image=image)["image"]
    assert ours.shape == expected.shape == image.shape and ours.dtype == np.uint8
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
