"""Properties of ClipTransform over any clip length, channel count and size: one set of random
parameters for every frame, and the promised output layout (vidlearn issue 20, item A)."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vidlearn.data.transforms import ClipTransform


def geometric(size: int) -> list[A.BasicTransform]:
    """Flip, warp and crop back to `size` (the crop's size is data.size, as in conf/augment)."""
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(translate_percent=(-0.2, 0.2), scale=(0.7, 1.3), rotate=(-40, 40), p=1.0),
        A.RandomResizedCrop(size=(size, size), scale=(0.3, 1.0), p=1.0),
    ]


@settings(max_examples=20)
@given(
    length=st.integers(1, 60),
    channels=st.sampled_from([1, 2, 3, 5]),
    height=st.integers(4, 24),
    width=st.integers(4, 24),
    size=st.integers(4, 20),
    seed=st.integers(0, 2**32 - 1),
)
@example(length=50, channels=3, height=12, width=20, size=16, seed=1)  # 150 channels: sliced
def test_every_frame_of_a_clip_moves_alike(
    length: int, channels: int, height: int, width: int, size: int, seed: int
) -> None:
    """A clip of identical frames, resized and geometrically augmented, comes out as identical
    frames `(T, C, size, size)` float32, whatever T*C (past OpenCV's 128 channels included).

    Caught (planted): seeding the pipeline once before the slices of a long clip instead of once
    per slice (the slices past the first 128 channels draw their own warp).
    """
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    clip = np.broadcast_to(frame, (length, height, width, channels))
    transform = ClipTransform(geometric(size), size, [0.5] * channels, [0.25] * channels)
    out = transform(np.ascontiguousarray(clip), np.random.default_rng(seed))
    assert out.shape == (length, channels, size, size) and out.dtype == torch.float32
    assert torch.equal(out, out[:1].expand_as(out))
