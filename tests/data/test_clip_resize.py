"""ClipTransform resizes frame by frame: the pixels of resizing the clip stacked as channels
(uint8 within one grey level: OpenCV's fixed-point bilinear rounds an exact .5 tie one way for 2
channels and the other for 4, e.g. 122.5 from a 2x2 frame shrunk to 1x1; float32 within float32
rounding, as OpenCV sums channels in another order)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data.transforms import ClipTransform, resize


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_clip_resized_frame_by_frame_equals_the_stacked_resize(dtype: type) -> None:
    rng = np.random.default_rng(0)
    frames = (rng.random((5, 40, 56, 3)) * 255).astype(dtype)  # (T, H, W, C)
    stacked = resize(frames.transpose(1, 2, 0, 3).reshape(40, 56, 15), 24)  # (24, 24, T*C)
    expected = stacked.reshape(24, 24, 5, 3).transpose(2, 3, 0, 1)  # (T, C, 24, 24)
    clip = ClipTransform([], 24, [0.0], [1.0], normalise=False)(frames).numpy()
    assert clip.dtype == dtype
    np.testing.assert_allclose(clip, expected, rtol=1e-5 if dtype == np.float32 else 0)


@settings(deadline=None)
@given(
    length=st.integers(1, 4),
    channels=st.integers(1, 6),  # grey, RGB and multi-view arrays
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    size=st.integers(1, 40),
    dtype=st.sampled_from([np.uint8, np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_any_clip_resizes_frame_by_frame_as_stacked(
    length: int, channels: int, height: int, width: int, size: int, dtype: type, seed: int
) -> None:
    """T = 1, C = 1 or 5, odd sizes, a size equal to the frame's: the frame-by-frame resize gives
    the stacked resize's pixels, shape and dtype. Caught (planted): `resize(frame, self.size)`
    replaced by `resize(frame[..., :1], self.size)` (one channel kept)."""
    frames = (np.random.default_rng(seed).random((length, height, width, channels)) * 255).astype(
        dtype
    )  # (T, H, W, C)
    stacked = resize(frames.transpose(1, 2, 0, 3).reshape(height, width, -1), size)
    expected = stacked.reshape(size, size, length, channels).transpose(2, 3, 0, 1)
    clip = ClipTransform([], size, [0.0], [1.0], normalise=False)(frames).numpy()
    assert clip.shape == (length, channels, size, size) and clip.dtype == dtype
    if dtype == np.uint8:  # a .5 tie may round either way with another channel count
        difference = np.abs(clip.astype(np.int16) - expected.astype(np.int16))
        assert difference.max(initial=0) <= 1
    else:
        np.testing.assert_allclose(clip, expected, rtol=1e-5, atol=1e-3)
