"""Property: any array a user saves with np.save is read as its own values or refused by name.

A frame array can hold any dtype NumPy stores (complex, timedelta, float64 beyond float32's
range, NaN) and any clip shape. `open_video(...).read(indices)` must return `array[indices]` as
(T, H, W, C) uint8 or float32 with every value finite and equal to the stored one, or raise a
DecodeError naming the file (which the datasets turn into a reported substitution); never
another exception, a silently dropped imaginary part, or NaN/inf frames that reach the model.

Planted bugs these tests caught: accepting every `np.number` dtype again (complex frames lost
their imaginary part with only a ComplexWarning; timedelta64 raised a bare ValueError from the
buffer cast), and removing the finiteness check of float frames (NaN passed to the model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from vidlearn.data.video import DecodeError, open_video

SHAPES = st.tuples(
    st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.sampled_from([None, 1, 2, 5])
).map(lambda s: s[:3] if s[3] is None else s)
# One branch per kind, so the rare kinds (complex, timedelta) come up within 30 examples.
DTYPES = st.one_of(
    npst.boolean_dtypes(),
    npst.unsigned_integer_dtypes(),
    npst.integer_dtypes(),
    npst.floating_dtypes(),
    npst.complex_number_dtypes(),
    npst.timedelta64_dtypes(),
    npst.datetime64_dtypes(),
)


@given(
    dtype=DTYPES,
    shape=SHAPES,
    data=st.data(),
)
def test_any_saved_array_reads_as_its_values_or_is_a_decode_error_naming_it(
    tmp_path_factory: pytest.TempPathFactory, dtype: np.dtype, shape: tuple, data: st.DataObject
) -> None:
    array = data.draw(npst.arrays(dtype, shape))
    indices = data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6))
    path = tmp_path_factory.mktemp("arrays") / "clip.npy"
    np.save(path, array)
    try:
        reader = open_video(path)
        try:
            frames = reader.read(indices)
        finally:
            reader.close()
    except DecodeError as error:
        assert str(error).startswith(f"{path}: ")
        return
    assert dtype.kind in "biuf", f"{dtype} frames were read as numbers: {frames.ravel()[:4]}"
    expected = (array if array.ndim == 4 else array[..., None])[indices]
    assert frames.dtype == (np.uint8 if dtype == np.uint8 else np.float32)
    assert np.isfinite(frames).all()
    np.testing.assert_array_equal(frames, expected.astype(frames.dtype))


@pytest.mark.parametrize("dtype", ["c8", "m8[s]", "M8[s]", "U2"])
def test_an_array_of_no_real_numbers_is_a_decode_error_naming_its_dtype(
    tmp_path: Path, dtype: str
) -> None:
    path = tmp_path / "clip.npy"
    np.save(path, np.zeros((3, 4, 4), dtype=dtype))
    with pytest.raises(DecodeError, match=rf"{path}: array dtype .* store uint8 or float frames"):
        open_video(path).read([0])


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e300])
def test_float_frames_that_are_not_finite_in_float32_are_a_decode_error_naming_the_frame(
    tmp_path: Path, value: float
) -> None:
    array = np.zeros((3, 4, 4), dtype=np.float64)
    array[2, 1, 1] = value
    path = tmp_path / "clip.npy"
    np.save(path, array)
    reader = open_video(path)
    assert reader.read([0, 1]).max() == 0  # the other frames still read
    with pytest.raises(DecodeError, match=rf"{path}: frame\(s\) \[2\] hold NaN or infinite"):
        reader.read([1, 2])
