"""Generated batches (repeated keys, unreadable files, frames of other shapes or dtypes, any
transform that honours the Transform contract) fetched at once against item by item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidlearn.data.clip_sampling import RandomClipSampler
from vidlearn.data.datasets import VideoClipDataset, collate
from vidlearn.data.sample_keys import SampleKey
from vidlearn.data.transforms import ClipTransform
from vidlearn.data.video import ArrayReader


def transposed(frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """(T, H, W, C) -> (T, C, W, H): a valid transform whose output is a view of its input."""
    return torch.from_numpy(frames).permute(0, 3, 2, 1)


def first_frame_held(frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """(T, H, W, C) -> (T, C, H, W), the first frame T times: a view (time stride 0)."""
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)
    return clip[:1].expand_as(clip)


TRANSFORMS = {
    "kept uint8": ClipTransform([], 6, [0.5], [0.25], normalise=False),
    "transposed view": transposed,
    "first frame held": first_frame_held,
}
FILES = {  # name -> (frames (T, H, W[, C]) and dtype, or None: an unreadable file)
    "grey": ((7, 6, 6), np.uint8),
    "grey float": ((7, 6, 6), np.float32),
    "other size": ((7, 8, 8), np.uint8),
    "unreadable": None,
}


def batch_or_error(fetch) -> dict | str:
    try:
        return fetch()
    except RuntimeError as error:
        return type(error).__name__


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(st.sampled_from(sorted(FILES)), min_size=2, max_size=4),
    positions=st.lists(st.integers(0, 3), min_size=2, max_size=5),
    transform=st.sampled_from(sorted(TRANSFORMS)),
    seed=st.integers(0, 99),
)
def test_a_generated_batch_fetched_at_once_equals_its_items_fetched_one_by_one(
    tmp_path: Path, files: list[str], positions: list[int], transform: str, seed: int
) -> None:
    """Planted bugs caught: a slot whose view does not equal the slot (np.shares_memory as the
    test of an input produced in place) kept the un-transposed frames."""
    rng = np.random.default_rng(seed)
    paths = []
    for number, name in enumerate(files):
        path = tmp_path / f"{seed}_{number}_{len(files)}.npy"
        if FILES[name] is None:
            path.write_bytes(b"not an array")
        else:
            shape, dtype = FILES[name]
            np.save(path, (rng.random(shape) * 250).astype(dtype))
        paths.append(str(path))
    if all(FILES[name] is None for name in files):
        return  # nothing readable: both raise DecodeError
    dataset = VideoClipDataset(
        paths, np.arange(len(paths), dtype=np.float32), RandomClipSampler(3), TRANSFORMS[transform]
    )
    keys = [SampleKey(p % len(paths), seed, 0, i) for i, p in enumerate(positions)]
    expected = batch_or_error(lambda: collate([dataset[key] for key in keys]))
    ours = batch_or_error(lambda: collate(dataset.__getitems__(keys)))
    if isinstance(expected, str):
        assert ours == expected
        return
    assert ours.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert ours[name].dtype == value.dtype and torch.equal(ours[name], value), name
        else:
            assert ours[name] == value, name


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    wanted=st.lists(st.integers(0, 5), min_size=1, max_size=8),
    channels=st.sampled_from([0, 1, 3]),
    into_slot=st.booleans(),
)
def test_array_frames_read_by_offset_are_the_arrays_frames_in_any_order(
    tmp_path: Path, wanted: list[int], channels: int, into_slot: bool
) -> None:
    """Repeated, backward and scattered indices (a looping or padding sampler), read anew or
    into a batch slot. Planted bug caught: runs split only where indices jump forward
    (`np.diff(wanted) > 1`) read a repeated frame's neighbour."""
    shape = (6, 4, 5) if channels == 0 else (6, 4, 5, channels)
    array = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    path = tmp_path / f"frames{channels}.npy"
    np.save(path, array)
    expected = array[wanted] if channels else array[wanted][..., None]
    out = np.zeros_like(expected) if into_slot else None
    frames = ArrayReader(str(path)).read(wanted, out=out)
    assert np.array_equal(frames, expected)
