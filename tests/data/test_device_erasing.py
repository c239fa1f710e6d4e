"""ClipRandomErasingOnDevice: one box per clip, the same on every frame, seeded per item."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vidlearn.data.device_augment import ClipRandomErasingOnDevice
from vidlearn.errors import ConfigError


@given(
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    area=st.tuples(st.floats(0.01, 1.0), st.floats(0.01, 1.0)).map(sorted),  # up to the frame
    aspect=st.tuples(st.floats(0.1, 10.0), st.floats(0.1, 10.0)).map(sorted),
    p=st.sampled_from([0.0, 0.5, 1.0]),
    value=st.sampled_from(["zero", "random"]),
    seeds=st.lists(st.integers(0, 2**62 - 1), min_size=1, max_size=4),
)
def test_the_erased_pixels_are_one_box_inside_the_frame_on_every_frame(
    height: int, width: int, area: list, aspect: list, p: float, value: str, seeds: list[int]
) -> None:
    """Only the drawn box changes, it lies inside the frame, and every frame and channel of a
    clip changes in that box alike. Planted bugs caught: a box per frame (seed + frame) and a
    box one pixel taller than drawn (it reached past the frame and outside the drawn box)."""
    erasing = ClipRandomErasingOnDevice(p=p, area=area, aspect=aspect, value=value)
    clips = torch.full((len(seeds), 3, 2, height, width), 5.0)  # 5: far from 0 and from noise
    out = erasing(clips, torch.tensor(seeds))
    for item, seed in enumerate(seeds):
        changed = out[item] != clips[item]  # (T, C, H, W)
        box = erasing.draw(seed, height, width)
        expected = torch.zeros(height, width, dtype=torch.bool)
        if box is not None:
            top, left, box_h, box_w = box
            assert top >= 0 and top + box_h <= height and left >= 0 and left + box_w <= width
            expected[top : top + box_h, left : left + box_w] = True
        assert torch.equal(changed, expected.expand_as(changed))
        assert torch.equal(out[item], out[item, :1].expand_as(out[item]))  # frames alike


def test_zero_fills_the_box_with_the_mean_colour() -> None:
    erasing = ClipRandomErasingOnDevice(p=1.0, area=[0.2, 0.2], aspect=[1, 1])
    out = erasing(torch.ones(1, 2, 3, 10, 10), torch.tensor([0]))
    assert (out == 0).sum() == 2 * 3 * 16  # 0.2 of 100 pixels, square: round(sqrt(20)) = 4 a side
    assert ((out == 0) | (out == 1)).all()


def test_a_box_that_cannot_fit_leaves_the_clip_as_it_is() -> None:
    """As timm: the whole frame (area 1) is never erased, boxes must lie strictly inside."""
    clips = torch.randn(3, 2, 1, 6, 6)
    erasing = ClipRandomErasingOnDevice(p=1.0, area=[1.0, 1.0], aspect=[1, 1])
    assert torch.equal(erasing(clips, torch.arange(3)), clips)


def test_a_clip_is_erased_by_its_seed_alone_not_by_its_batch() -> None:
    erasing = ClipRandomErasingOnDevice(p=1.0, value="random")
    clips = torch.randn(3, 2, 3, 16, 16)
    together = erasing(clips, torch.tensor([7, 8, 9]))
    alone = erasing(clips[1:2], torch.tensor([8]))
    assert torch.equal(together[1:2], alone)


def test_images_b_c_h_w_are_erased_too() -> None:
    erasing = ClipRandomErasingOnDevice(p=1.0)
    images = torch.ones(2, 3, 16, 16)
    assert (erasing(images, torch.tensor([1, 2])) == 0).any(dim=(1, 2, 3)).all()


@pytest.mark.parametrize(
    "options",
    [
        dict(p=1.5),
        dict(area=[0.0, 0.5]),
        dict(area=[0.2, 1.5]),
        dict(area=[0.5, 0.2]),
        dict(aspect=[0.0, 2.0]),
        dict(value="black"),
        dict(attempts=0),
        # accepted (or a bare ValueError) before the fix:
        dict(area=[0.1, math.nan]),
        dict(aspect=[0.3, math.inf]),
        dict(area=[0.1]),
        dict(attempts=2.5),
    ],
)
def test_out_of_range_options_are_config_errors(options: dict) -> None:
    with pytest.raises(ConfigError):
        ClipRandomErasingOnDevice(**options)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        (dict(p=1.5), "erasing.p"),
        (dict(area=[0.5, 0.2]), "erasing.area"),
        (dict(aspect=[2]), "erasing.aspect"),
    ],
)
def test_option_errors_name_the_erasing_key(options: dict, key: str) -> None:
    """Failed before the fix: p and the low > high check said `augment.device:
    ClipRandomErasingOnDevice p=...`, a key that erasing=random does not have."""
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}="):
        ClipRandomErasingOnDevice(**options)
