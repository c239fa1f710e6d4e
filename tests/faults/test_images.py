"""Unusual and broken image files: every readable mode becomes (H, W, 3) uint8 RGB, a broken file
a DecodeError naming it, which ImageDataset turns into a reported substitution."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidlearn.data.datasets import ImageDataset, read_image
from vidlearn.data.transforms import ImageTransform
from vidlearn.data.video import DecodeError


def save(image: Image.Image, path: Path, format: str) -> Path:
    image.save(path, format=format)
    return path


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """One file per case, 24 x 16 (W x H)."""
    rgb = Image.new("RGB", (24, 16), (200, 100, 50))
    whole = io.BytesIO()
    rgb.save(whole, format="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    deep = Image.fromarray(np.full((16, 24), 40_000, dtype=np.uint16))
    return {
        "truncated_jpeg": tmp_path / "truncated.jpg",
        "cmyk_jpeg": save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg", "JPEG"),
        "png_16_bit": save(deep, tmp_path / "deep.png", "PNG"),
        "grayscale": save(rgb.convert("L"), tmp_path / "gray.png", "PNG"),
        "rgba": save(rgb.convert("RGBA"), tmp_path / "rgba.png", "PNG"),
        "png_named_jpg": save(rgb, tmp_path / "really_a_png.jpg", "PNG"),
    }


@pytest.mark.parametrize("case", ["cmyk_jpeg", "png_16_bit", "grayscale", "rgba", "png_named_jpg"])
def test_readable_image_becomes_rgb_uint8(images: dict[str, Path], case: str) -> None:
    array = read_image(str(images[case]))
    assert array.shape == (16, 24, 3) and array.dtype == np.uint8


def test_16_bit_png_maps_full_range_to_8_bits(images: dict[str, Path]) -> None:
    # 40,000 / 65,535 of full scale: 156, not clipped to 255 nor stretched to its own peak.
    assert np.unique(read_image(str(images["png_16_bit"]))).tolist() == [156]


def test_cmyk_jpeg_keeps_its_colour(images: dict[str, Path]) -> None:
    red, green, blue = read_image(str(images["cmyk_jpeg"])).reshape(-1, 3).mean(axis=0)
    assert red > green > blue  # (200, 100, 50), not inverted CMYK channels


def test_truncated_jpeg_raises_decode_error_naming_it(images: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="not a readable image") as error:
        read_image(str(images["truncated_jpeg"]))
    assert str(error.value).startswith(str(images["truncated_jpeg"]))


def test_truncated_jpeg_in_a_dataset_is_substituted_and_reported(images: dict[str, Path]) -> None:
    paths = [str(images["truncated_jpeg"]), str(images["grayscale"])]
    dataset = ImageDataset(paths, np.array([0, 1]), ImageTransform([], 32, [0.5] * 3, [0.25] * 3))
    item = dataset[0]
    assert item["input"].shape == (3, 32, 32) and item["index"] == 1 and item["target"] == 1
    (record,) = item["skipped"]
    assert record.path == str(images["truncated_jpeg"])
    assert record.reason.startswith("not a readable image")


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone photo stored 40 wide x 20 high, tagged orientation 6 (rotate 90 degrees clockwise
    to display), is read as it is shown: 20 wide x 40 high, its left edge at the top."""
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :4] = 255  # a white stripe along the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, format="JPEG", exif=exif, quality=95)
    image = read_image(str(path))
    assert image.shape == (40, 20, 3)
    assert image[:4].mean() > 200 and image[-4:].mean() < 50


def test_float_image_in_zero_one_maps_to_the_8_bit_range(tmp_path: Path) -> None:
    # a 32-bit float TIFF (mode F) in [0, 1] was converted to all-black uint8
    values = np.linspace(0.0, 1.0, 16 * 24, dtype=np.float32).reshape(16, 24)
    image = read_image(str(save(Image.fromarray(values), tmp_path / "f.tif", "TIFF")))
    assert image[..., 0].tolist() == np.rint(values * 255).astype(np.uint8).tolist()


@pytest.mark.parametrize("value", [1.5, -0.5, float("nan")])
def test_float_image_outside_zero_one_is_a_decode_error_naming_it(
    tmp_path: Path, value: float
) -> None:
    path = save(Image.fromarray(np.full((4, 4), value, np.float32)), tmp_path / "f.tif", "TIFF")
    with pytest.raises(DecodeError, match=rf"{path}: .*float.*\[0, 1\]"):
        read_image(str(path))


def test_image_beyond_pillows_pixel_limit_is_a_decode_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(Image.new("RGB", (40, 30)), tmp_path / "large.png", "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1200 px is over twice the limit
    with pytest.raises(DecodeError, match=rf"{path}: .*1200 pixels.*downscale"):
        read_image(str(path))
