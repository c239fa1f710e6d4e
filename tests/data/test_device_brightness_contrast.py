"""Brightness and contrast on the device: augment=light_device keeps light's
RandomBrightnessContrast, one draw per clip from its seed, with the same ranges."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.stats import kstest

from vidlearn.data.device_augment import ClipAffineOnDevice, ClipBrightnessContrastOnDevice

AUGMENT_DIR = Path(__file__).resolve().parents[2] / "conf" / "augment"
MEAN, STD = [0.5], [0.25]
SEEDS = torch.arange(2000)


def light_device() -> object:
    """conf/augment/light_device.yaml's device augmentation with this module's mean and std."""
    data = OmegaConf.create({"data": {"mean": MEAN, "std": STD}})
    return instantiate(
        OmegaConf.merge(data, OmegaConf.load(AUGMENT_DIR / "light_device.yaml")).device
    )


def step_of(kind: type) -> object:
    return next(step for step in light_device().steps if isinstance(step, kind))


def test_light_device_has_lights_brightness_contrast_ranges() -> None:
    light = OmegaConf.load(AUGMENT_DIR / "light.yaml").transforms[1]
    assert light._target_ == "albumentations.RandomBrightnessContrast"
    step = step_of(ClipBrightnessContrastOnDevice)
    assert step.brightness == (-light.brightness_limit, light.brightness_limit)
    assert step.contrast == (-light.contrast_limit, light.contrast_limit)
    assert step.p == light.p


def test_every_frame_of_a_clip_gets_the_same_change() -> None:
    frame = 0.8 * torch.rand(1, 1, 1, 8, 8) - 1.6  # pixels in [0.1, 0.3]: nothing clips
    clips = frame.expand(16, 5, -1, -1, -1).clone()  # (B=16, T=5, 1, 8, 8), identical frames
    out = ClipBrightnessContrastOnDevice(MEAN, STD, brightness=0.2, contrast=0.2)(clips, SEEDS[:16])
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert not torch.allclose(out[0], clips[0])


def test_a_drawn_change_is_albumentations_brightness_contrast() -> None:
    augment = ClipBrightnessContrastOnDevice(MEAN, STD, brightness=0.2, contrast=0.2)
    clip = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)  # (T, H, W, C)
    inputs = (torch.from_numpy(clip).permute(0, 3, 1, 2)[None] / 255.0 - MEAN[0]) / STD[0]
    out = augment(inputs, torch.tensor([5]))[0]  # (T, C, H, W)
    alpha, beta = augment.draw(5)
    expected = A.RandomBrightnessContrast(p=1.0).apply(clip, alpha=alpha, beta=beta * 255)
    pixels = (out * STD[0] + MEAN[0]) * 255  # (T, 1, H, W)
    assert np.abs(pixels.permute(0, 2, 3, 1).numpy() - expected).max() <= 1.0  # uint8 rounding


def test_brightness_and_contrast_factors_are_uniform_over_the_configured_range() -> None:
    step = ClipBrightnessContrastOnDevice(MEAN, STD, brightness=0.2, contrast=[-0.1, 0.3])
    alphas, betas = np.array([step.draw(int(seed)) for seed in SEEDS]).T
    assert kstest(betas, "uniform", args=(-0.2, 0.4)).pvalue > 0.01
    assert kstest(alphas - 1, "uniform", args=(-0.1, 0.4)).pvalue > 0.01


def test_it_applies_with_probability_p_independently_of_the_warp() -> None:
    colour = step_of(ClipBrightnessContrastOnDevice)
    warp = step_of(ClipAffineOnDevice)
    coloured = np.array([colour.draw(int(seed)) != (1.0, 0.0) for seed in SEEDS])
    warped = np.array([warp.draw(int(seed)) != (0.0, 0.0, 0.0, 1.0) for seed in SEEDS])
    assert coloured.mean() == pytest.approx(colour.p, abs=0.04)
    assert (coloured & warped).mean() == pytest.approx(colour.p * warp.p, abs=0.04)
