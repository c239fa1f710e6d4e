"""ClipTransform resizes frame by frame: the pixels of resizing the clip stacked as channels
(uint8 identical; float32 within float32 rounding, as OpenCV sums channels in another order)."""

from __future__ import annotations

import numpy as np
import pytest

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
