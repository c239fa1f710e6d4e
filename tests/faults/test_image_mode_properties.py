"""Property: an image of any mode a user's tools write is read as the grey levels it shows.

Scanners, microscopes and exporters write 1-bit, 8-bit, 16-bit, 32-bit integer and 32-bit float
greys, with or without alpha, as palettes or CMYK, in PNG or TIFF. `read_image` must return
(H, W, 3) uint8 whose every channel is the grey level a viewer shows (float images are taken to
be in [0, 1], 16-bit ones in 0..65535), or a DecodeError naming the file.

Planted bug this test caught: `read_image` without its float (mode F) branch: a float image in
[0, 1] was converted to all black.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst
from PIL import Image

from vidlearn.data.datasets import read_image

# every pixel drawn on its own (no fill value), so images are rarely one flat grey
GREYS = npst.arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6)), fill=st.nothing())


def encoded(grey: np.ndarray, mode: str) -> tuple[Image.Image, np.ndarray]:
    """`grey` stored in `mode`, and the 8-bit grey a viewer shows for it."""
    if mode == "1":
        return Image.fromarray(grey >= 128), np.where(grey >= 128, 255, 0).astype(np.uint8)
    if mode in ("I;16", "I"):
        return Image.fromarray(grey.astype(np.uint16) * 257).convert(mode), grey
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32) / 255.0), grey
    return Image.fromarray(grey).convert(mode), grey


# Every mode is tried (a drawn mode left rare ones out of the 30 examples), each on 10 images.
@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
@settings(max_examples=10)
@given(grey=GREYS, extension=st.sampled_from(["png", "tif"]))
def test_any_mode_is_read_as_the_grey_it_shows(
    tmp_path_factory: pytest.TempPathFactory, grey: np.ndarray, mode: str, extension: str
) -> None:
    image, shown = encoded(grey, mode)
    if extension == "png" and mode in ("CMYK", "F", "I"):
        extension = "tif"  # PNG cannot hold these modes
    path = tmp_path_factory.mktemp("modes") / f"image.{extension}"
    image.save(path)
    pixels = read_image(str(path))
    assert pixels.shape == (*grey.shape, 3) and pixels.dtype == np.uint8
    # CMYK's round trip through RGB may round by one level
    tolerance = 1 if mode == "CMYK" else 0
    for channel in range(3):
        difference = np.abs(pixels[..., channel].astype(int) - shown)
        assert difference.max() <= tolerance, (mode, pixels[..., channel], shown)
