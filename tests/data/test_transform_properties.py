"""Properties of ClipTransform over any clip length, channel count and size: one set of random
parameters for every frame, and the promised output layout (vidlearn issue 20, item A)."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vidlearn.data.transforms import BatchNormalisation, ClipTransform, swap_leading_axes


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


@settings(max_examples=30, deadline=None)
@given(
    length=st.integers(1, 8),
    channels=st.sampled_from([1, 2, 3]),
    height=st.integers(3, 21),
    width=st.integers(3, 21),
    size=st.integers(3, 16),
    wide=st.booleans(),
    augment=st.booleans(),
    black=st.lists(st.booleans(), min_size=8, max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
@example(  # T = 1, a black frame, no resize, no augmentation
    length=1, channels=1, height=5, width=5, size=5, wide=False, augment=False,
    black=[True] * 8, seed=0,
)  # fmt: skip
def test_the_uint8_path_with_its_peaks_gives_the_float_paths_inputs(
    length: int,
    channels: int,
    height: int,
    width: int,
    size: int,
    wide: bool,
    augment: bool,
    black: list[bool],
    seed: int,
) -> None:
    """Per-frame max normalisation on the device: the clip stays in its dtype, `peak` (T,) is
    each frame's maximum of the input (1 for a black frame), and BatchNormalisation of the
    collated pair equals the worker path's float32 clip exactly (bit for bit: the same float32
    operations). `wide` frames hold uint16-range values, as ArrayReader returns uint16 arrays
    (float32).

    Caught (planted): peaks read after resizing (`peaks_of` on the resized clip) and black frames
    given a peak of 0 (`peaks[peaks <= 0] = 1.0` removed: NaN inputs).
    """
    rng = np.random.default_rng(seed)
    if wide:
        clip = rng.integers(0, 65536, (length, height, width, channels)).astype(np.float32)
    else:
        clip = rng.integers(0, 256, (length, height, width, channels), dtype=np.uint8)
    clip[np.array(black[:length])] = 0
    mean, std = [0.4] * channels, [0.3] * channels
    steps = geometric(size) if augment else []
    worker = ClipTransform(steps, size, mean, std, per_frame_max_norm=True)
    device = ClipTransform(steps, size, mean, std, per_frame_max_norm=True, normalise=False)
    expected = worker(clip, np.random.default_rng(seed))  # (T, C, size, size) float32
    item = device(clip, np.random.default_rng(seed))
    assert item["input"].dtype == torch.from_numpy(clip).dtype
    peaks = clip.reshape(length, -1).max(axis=1)
    np.testing.assert_array_equal(item["peak"].numpy(), np.where(peaks > 0, peaks, 1.0))
    normalised = BatchNormalisation(mean, std)(item["input"][None], item["peak"][None])[0]
    assert torch.equal(normalised, expected) and torch.isfinite(normalised).all()


@settings(max_examples=30, deadline=None)
@given(
    first=st.integers(1, 12),
    second=st.integers(1, 12),
    width=st.integers(1, 9),
    dtype=st.sampled_from(["u1", "f4", "f8", "i2"]),
)
def test_swapping_a_clips_leading_axes_is_numpys_transpose(
    first: int, second: int, width: int, dtype: str
) -> None:
    """`swap_leading_axes` (OpenCV's transpose where it moves the element, NumPy's otherwise)
    gives NumPy's `(B, A, K)` transpose, C-contiguous, for any shape and dtype.

    Caught (planted): reshaping OpenCV's result to `(first, second, width)`."""
    array = (np.arange(first * second * width) % 251).astype(dtype).reshape(first, second, width)
    swapped = swap_leading_axes(array)
    assert swapped.flags.c_contiguous and swapped.dtype == array.dtype
    np.testing.assert_array_equal(swapped, array.transpose(1, 0, 2))
