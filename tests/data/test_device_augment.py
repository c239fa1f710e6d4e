"""ClipAffineOnDevice: one warp per clip on the device, seeded per item, like the worker path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.stats import ks_2samp

from vidlearn.data.device_augment import ClipAffineOnDevice
from vidlearn.data.transforms import ClipTransform

AUGMENT_DIR = Path(__file__).resolve().parents[2] / "conf" / "augment"
MEAN, STD = [0.5], [0.25]


def recipe_on_device() -> ClipAffineOnDevice:
    """conf/augment/hms_cine_device.yaml with this module's mean and std."""
    config = OmegaConf.load(AUGMENT_DIR / "hms_cine_device.yaml").device
    return instantiate(config, mean=MEAN, std=STD)


def bar_clips(count: int) -> torch.Tensor:
    """(count, 2, 1, 48, 48) normalised clips of a centred vertical bar."""
    clip = np.zeros((2, 48, 48, 1), dtype=np.uint8)
    clip[:, 12:36, 21:27] = 250
    return ClipTransform([], 48, MEAN, STD)(clip).expand(count, -1, -1, -1, -1)


def test_every_frame_of_a_clip_gets_the_same_warp() -> None:
    frame = torch.rand(1, 1, 3, 24, 32)
    clips = frame.expand(4, 6, -1, -1, -1).clone()  # (B=4, T=6, 3, 24, 32), identical frames
    out = recipe_on_device()(clips, torch.arange(4))
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert not torch.equal(out[0], clips[0])


def test_a_clip_depends_on_its_seed_alone_not_on_its_batch() -> None:
    clips = torch.rand(3, 4, 1, 20, 20)
    augment = recipe_on_device()
    together = augment(clips, torch.tensor([7, 8, 9]))
    alone = augment(clips[1:2], torch.tensor([8]))
    assert torch.allclose(together[1:2], alone, atol=1e-6)
    assert not torch.allclose(together[0], augment(clips[0:1], torch.tensor([10]))[0])


def test_outside_the_frame_is_black_in_normalised_units() -> None:
    clips = torch.full((1, 2, 1, 16, 16), 2.0)  # white after normalisation
    augment = ClipAffineOnDevice(MEAN, STD, rotate=[45, 45])
    corner = augment(clips, torch.tensor([0]))[0, 0, 0, 0, 0]
    assert corner == pytest.approx(-MEAN[0] / STD[0])


def test_images_b_c_h_w_are_warped_too() -> None:
    images = torch.rand(2, 3, 16, 16)
    assert recipe_on_device()(images, torch.tensor([1, 2])).shape == (2, 3, 16, 16)


def test_fixed_parameters_give_the_worker_path_image() -> None:
    # The same rotation, shift and scale as albumentations' Affine (OpenCV) on the worker path,
    # away from the border: equal within interpolation rounding.
    clip = np.zeros((2, 48, 48, 1), dtype=np.uint8)
    clip[:, 12:36, 21:27] = 250
    on_device = ClipAffineOnDevice(
        MEAN, STD, rotate=[20, 20], translate_x=[0.1, 0.1], scale=[1.1, 1.1]
    )
    affine = A.Affine(
        rotate=(20, 20), translate_percent={"x": (0.1, 0.1), "y": (0, 0)}, scale=(1.1, 1.1)
    )
    worker = ClipTransform([affine], 48, MEAN, STD)(clip, np.random.default_rng(0))
    device = on_device(ClipTransform([], 48, MEAN, STD)(clip)[None], torch.tensor([0]))[0]
    inside = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert (device - worker)[inside].abs().mean() < 0.05  # 1 / 80 of the white-black range


def test_rotation_and_shift_match_the_worker_path_in_distribution(bar_pose: Callable) -> None:
    draws = 400
    device = recipe_on_device()(bar_clips(draws), torch.arange(draws))  # one batch of 400
    recipe = instantiate(OmegaConf.load(AUGMENT_DIR / "hms_cine.yaml").transforms)
    worker_transform = ClipTransform(recipe, 48, MEAN, STD)
    clip = np.zeros((2, 48, 48, 1), dtype=np.uint8)
    clip[:, 12:36, 21:27] = 250
    worker = [worker_transform(clip, np.random.default_rng(seed)) for seed in range(draws)]
    poses_device = np.array([bar_pose(out[0, 0].numpy() + 2) for out in device])
    poses_worker = np.array([bar_pose(out[0, 0].numpy() + 2) for out in worker])
    for statistic in (0, 1):  # centroid column, angle
        assert ks_2samp(poses_device[:, statistic], poses_worker[:, statistic]).pvalue > 1e-3
