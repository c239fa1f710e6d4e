"""ClipTransform / ImageTransform / PadToSquare, and the conf/augment presets that feed them."""

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

from vidlearn.data.transforms import (
    BatchNormalisation,
    ClipTransform,
    ImageTransform,
    PadToSquare,
    max_normalise,
    resize,
)
from vidlearn.errors import ConfigError

AUGMENT_DIR = Path(__file__).resolve().parents[2] / "conf" / "augment"


def geometric_augment() -> list[A.BasicTransform]:
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(translate_percent=(-0.1, 0.1), scale=(0.8, 1.2), rotate=(-25, 25), p=1.0),
    ]


def dot_centre(frame: torch.Tensor) -> np.ndarray:
    """Intensity-weighted (row, column) of a bright dot on a dark frame (1, H, W)."""
    weights = (frame[0] - frame[0].min()).numpy()
    rows, columns = np.indices(weights.shape)
    return np.array([(rows * weights).sum(), (columns * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("seed", range(5))
def test_identical_frames_stay_identical_after_random_augmentation(seed: int) -> None:
    frame = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    clip = np.stack([frame] * 6)
    out = ClipTransform(
        geometric_augment() + [A.RandomBrightnessContrast(p=1.0)], 32, [0.5] * 3, [0.25] * 3
    )(clip, np.random.default_rng(seed))
    assert torch.equal(out, out[:1].expand_as(out))


@pytest.mark.parametrize("seed", range(5))
def test_moving_dot_keeps_constant_velocity_after_augmentation(seed: int) -> None:
    # An affine map sends equally spaced collinear points to equally spaced collinear points, so
    # one shared draw keeps the dot's velocity constant; a draw per frame would make it jitter.
    clip = np.zeros((8, 64, 64, 1), dtype=np.uint8)
    for t in range(8):
        clip[t, 30:34, 20 + 3 * t : 24 + 3 * t] = 255
    rng = np.random.default_rng(seed)
    out = ClipTransform(geometric_augment(), 64, [0.0], [1.0])(clip, rng)  # (8, 1, 64, 64)
    centres = np.stack([dot_centre(frame) for frame in out])
    assert np.abs(np.diff(centres, n=2, axis=0)).max() < 0.5


def test_clip_transform_returns_normalised_float32_t_c_h_w() -> None:
    clip = np.full((4, 20, 30, 3), 255, dtype=np.uint8)
    out = ClipTransform(None, 16, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])(clip)
    assert out.shape == (4, 3, 16, 16) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full_like(out, 2.0))  # (1.0 - 0.5) / 0.25


def test_clip_transform_normalises_each_channel_with_its_own_statistics() -> None:
    clip = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    out = ClipTransform([], 8, [0.0, 0.5, 1.0], [1.0, 0.5, 0.25])(clip)
    assert out[0, :, 0, 0].tolist() == [0.0, -1.0, -4.0]


def test_float_frames_are_taken_to_be_in_unit_range() -> None:
    clip = np.full((2, 8, 8, 1), 0.75, dtype=np.float32)
    out = ClipTransform([], 8, [0.5], [0.25])(clip)
    assert torch.allclose(out, torch.ones_like(out))


def test_grayscale_clip_keeps_one_channel() -> None:
    clip = np.random.default_rng(0).integers(0, 256, (5, 20, 20, 1), dtype=np.uint8)
    out = ClipTransform(geometric_augment(), 12, [0.5], [0.25])(clip, np.random.default_rng(0))
    assert out.shape == (5, 1, 12, 12)


def test_multi_view_array_keeps_its_channels() -> None:
    clip = np.random.default_rng(0).random((3, 20, 20, 5), dtype=np.float32)
    out = ClipTransform(geometric_augment(), 12, [0.5], [0.25])(clip, np.random.default_rng(0))
    assert out.shape == (3, 5, 12, 12)


def test_per_frame_max_norm_scales_every_frame_to_unit_peak() -> None:
    clip = np.zeros((2, 8, 8, 1), dtype=np.float32)
    clip[0, 2, 2], clip[1, 5, 5] = 10.0, 1000.0
    out = ClipTransform([], 8, [0.0], [1.0], per_frame_max_norm=True)(clip)
    assert out.amax(dim=(1, 2, 3)).tolist() == pytest.approx([1.0, 1.0], abs=0.05)


def test_clip_length_may_change_between_calls() -> None:
    transform = ClipTransform([], 8, [0.5], [0.25])
    assert transform(np.zeros((3, 8, 8, 1), np.uint8)).shape[0] == 3
    assert transform(np.zeros((6, 8, 8, 1), np.uint8)).shape[0] == 6


def test_mean_with_wrong_number_of_channels_names_the_keys() -> None:
    with pytest.raises(ConfigError, match="frames have 1 channel.* data.mean has 3"):
        ClipTransform([], 8, [0.5] * 3, [0.25] * 3)(np.zeros((2, 8, 8, 1), np.uint8))


def test_pad_to_square_pads_wide_image_top_and_bottom_with_edge_rows() -> None:
    image = np.arange(2 * 6, dtype=np.uint8).reshape(2, 6, 1)
    padded = PadToSquare()(image=image)["image"]
    assert padded.shape == (6, 6, 1)
    assert (
        (padded[:2] == image[0]).all()
        and (padded[2:4] == image).all()
        and (padded[4:] == image[1]).all()
    )


def test_pad_to_square_pads_tall_image_left_and_right_with_edge_columns() -> None:
    image = np.arange(6 * 2 * 3, dtype=np.uint8).reshape(6, 2, 3)
    padded = PadToSquare()(image=image)["image"]
    assert padded.shape == (6, 6, 3)
    assert (padded[:, :2] == image[:, :1]).all() and (padded[:, 2:4] == image).all()
    assert (padded[:, 4:] == image[:, 1:]).all()


def test_image_transform_returns_normalised_float32_c_h_w() -> None:
    out = ImageTransform([A.HorizontalFlip(p=1.0)], 16, [0.5] * 3, [0.5] * 3)(
        np.zeros((10, 30, 3), np.uint8), np.random.default_rng(0)
    )
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32 and torch.all(out == -1.0)


def test_image_transform_pad_to_square_keeps_aspect_ratio() -> None:
    image = np.full((16, 64, 1), 200, dtype=np.uint8)
    image[:4] = 0  # a dark band over the top quarter
    out = ImageTransform([], 64, [0.0], [1.0], pad_to_square=True)(image)
    # Padded, the band grows by 24 replicated rows to 28 of 64; stretched it would be 16 of 64.
    assert int((out[0, :, 0] < 0.5).sum()) == 28


@pytest.mark.parametrize("preset", sorted(path.stem for path in AUGMENT_DIR.glob("*.yaml")))
def test_augment_preset_builds_a_working_clip_transform(preset: str) -> None:
    augment = instantiate(OmegaConf.load(AUGMENT_DIR / f"{preset}.yaml").transforms)
    clip = np.random.default_rng(0).integers(0, 256, (4, 40, 40, 1), dtype=np.uint8)
    out = ClipTransform(augment, 32, [0.5], [0.25])(clip, np.random.default_rng(0))
    assert out.shape == (4, 1, 32, 32) and torch.isfinite(out).all()


def test_hms_cine_preset_shifts_horizontally_only() -> None:
    affine = instantiate(OmegaConf.load(AUGMENT_DIR / "hms_cine.yaml")).transforms[0]
    dot = np.zeros((150, 150, 1), dtype=np.uint8)
    dot[73:77, 73:77] = 255
    out = ClipTransform([affine], 150, [0.0], [1.0])(np.stack([dot] * 2), np.random.default_rng(0))
    row, column = dot_centre(out[0])
    assert (
        abs(row - 74.5) < 0.5 and abs(column - 74.5) <= 15.5
    )  # rotation about the centre leaves it


def test_augmentation_follows_the_item_generator() -> None:
    transform = ClipTransform(
        [A.Affine(rotate=(-45, 45), translate_percent=(-0.2, 0.2), p=1.0)], 16, [0.5], [0.25]
    )
    frames = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 1), dtype=np.uint8)
    first = transform(frames, np.random.default_rng(7))
    assert torch.equal(first, transform(frames, np.random.default_rng(7)))
    assert not torch.equal(first, transform(frames, np.random.default_rng(8)))


def test_augmenting_without_the_item_generator_is_refused() -> None:
    transform = ClipTransform([A.HorizontalFlip(p=1.0)], 8, [0.5], [0.25])
    with pytest.raises(ValueError, match="needs the item's generator"):
        transform(np.zeros((2, 8, 8, 1), np.uint8))


def per_frame_reference(
    clip: np.ndarray, augment: list[A.BasicTransform], size: int, seed: int
) -> np.ndarray:
    """The former path: albumentations per frame (`image`, `image1`, ...) sharing one draw."""
    names = [f"image{i}" for i in range(1, len(clip))]
    pipeline = A.Compose(
        [A.Resize(size, size), *augment], additional_targets=dict.fromkeys(names, "image")
    )
    pipeline.set_random_seed(seed)
    out = pipeline(image=clip[0], **dict(zip(names, clip[1:], strict=True)))
    return np.stack([out["image"], *(out[name] for name in names)])  # (T, size, size, C)


def hms_cine_augment() -> list[A.BasicTransform]:
    return instantiate(OmegaConf.load(AUGMENT_DIR / "hms_cine.yaml")).transforms


def test_evaluation_clips_equal_the_per_frame_path() -> None:
    clip = np.random.default_rng(0).integers(0, 256, (5, 30, 44, 3), dtype=np.uint8)
    out = ClipTransform([], 32, [0.5] * 3, [0.25] * 3)(clip)
    expected = (per_frame_reference(clip, [], 32, seed=0) / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(out.numpy(), expected.transpose(0, 3, 1, 2), atol=1e-5)


def bar_poses(outputs: list[np.ndarray], bar_pose: Callable) -> np.ndarray:
    """(draws, 2) bar poses of the first frame of each output clip (T, H, W) or (T, 1, H, W)."""
    return np.array([bar_pose(out.reshape(-1, 48, 48)[0]) for out in outputs])


def test_rotation_and_shift_match_the_per_frame_path_in_distribution(bar_pose: Callable) -> None:
    # 400 independent draws each of the cine recipe's rotation (+-25 deg) and shift (15% of the
    # width), read back from the bar's angle and centroid. A range halved fails (checked below
    # with the same statistic), so agreement is not luck.
    clip = np.zeros((2, 48, 48, 1), dtype=np.uint8)
    clip[:, 12:36, 21:27] = 250  # a vertical bar, centred
    augment, draws = hms_cine_augment(), 400
    transform = ClipTransform(augment, 48, [0.0], [1.0])
    ours = bar_poses(
        [transform(clip, np.random.default_rng(seed)).numpy() for seed in range(draws)], bar_pose
    )
    reference = bar_poses(
        [per_frame_reference(clip, augment, 48, 10_000 + seed) for seed in range(draws)],
        bar_pose,
    )
    halved = [A.Affine(rotate=(-12.5, 12.5), translate_percent={"x": (-0.05, 0.05), "y": 0})]
    narrow = bar_poses(
        [per_frame_reference(clip, halved, 48, seed) for seed in range(draws)], bar_pose
    )
    for statistic in (0, 1):  # centroid column, angle
        assert ks_2samp(ours[:, statistic], reference[:, statistic]).pvalue > 1e-3
        assert ks_2samp(narrow[:, statistic], reference[:, statistic]).pvalue < 1e-6


def test_one_seed_gives_the_per_frame_path_result_exactly() -> None:
    clip = np.random.default_rng(1).integers(0, 256, (6, 24, 24, 3), dtype=np.uint8)
    augment = [*geometric_augment(), A.RandomBrightnessContrast(p=1.0)]
    seed = int(np.random.default_rng(3).integers(2**32))
    ours = ClipTransform(augment, 24, [0.0] * 3, [1.0] * 3)(clip, np.random.default_rng(3))
    expected = per_frame_reference(clip, augment, 24, seed).transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("floats", [False, True])
def test_the_cine_recipe_gives_the_per_frame_path_result_exactly(floats: bool) -> None:
    """`augment=hms_cine` (ClipAffine, frames warped 4 at a time) equals albumentations' Affine
    on each frame with the same draw, resized first (25 frames: a last group of one)."""
    clip = np.random.default_rng(4).integers(0, 256, (25, 40, 36, 1), dtype=np.uint8)
    if floats:
        clip = (clip / 255).astype(np.float32)
    seed = int(np.random.default_rng(6).integers(2**32))
    ours = ClipTransform(hms_cine_augment(), 32, [0.0], [1.0], normalise=False)(
        clip, np.random.default_rng(6)
    )
    affine = [A.Affine(rotate=(-25, 25), translate_percent={"x": (-0.1, 0.1), "y": 0}, p=1.0)]
    expected = per_frame_reference(clip, affine, 32, seed).transpose(0, 3, 1, 2)
    assert ours.dtype == torch.from_numpy(expected).dtype
    np.testing.assert_array_equal(ours.numpy(), expected)


def test_max_norm_after_a_geometric_augmentation_equals_max_norm_before_it() -> None:
    clip = np.random.default_rng(2).integers(0, 120, (4, 32, 32, 1), dtype=np.uint8)
    augment = hms_cine_augment()
    ours = ClipTransform(augment, 32, [0.0], [1.0], per_frame_max_norm=True)(
        clip, np.random.default_rng(5)
    )
    divided_first = ClipTransform(augment, 32, [0.0], [1.0])(
        max_normalise(clip), np.random.default_rng(5)
    )
    # The same warp of x / peak and of x, then / peak: equal up to uint8 rounding of the warp.
    np.testing.assert_allclose(ours.numpy(), divided_first.numpy(), atol=1.0 / 100)


def test_resizing_a_clip_of_the_target_size_returns_it_unchanged() -> None:
    stacked = np.random.default_rng(0).integers(0, 256, (16, 16, 12), dtype=np.uint8)
    assert resize(stacked, 16) is stacked


def test_a_long_clip_beyond_opencvs_channel_limit_is_resized_like_a_short_one() -> None:
    clip = np.random.default_rng(0).integers(0, 256, (200, 20, 20, 3), dtype=np.uint8)  # 600 ch
    out = ClipTransform([], 12, [0.5] * 3, [0.25] * 3)(clip)
    assert out.shape == (200, 3, 12, 12)
    assert torch.equal(out[150:], ClipTransform([], 12, [0.5] * 3, [0.25] * 3)(clip[150:]))


def test_a_long_clip_beyond_opencvs_channel_limit_moves_every_frame_alike() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    clip = np.stack([frame] * 60)  # 180 channels stacked
    augment = [*geometric_augment(), A.RandomBrightnessContrast(p=1.0)]
    out = ClipTransform(augment, 16, [0.5] * 3, [0.25] * 3)(clip, np.random.default_rng(4))
    assert torch.equal(out, out[:1].expand_as(out))


def normalised_by_formula(raw: torch.Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    """The reference, independent of vidlearn: (x / 255 - mean) / std per channel, in float64,
    for uint8 `(..., C, H, W)`."""
    shape = (-1, 1, 1)
    return (raw.numpy() / 255.0 - np.reshape(mean, shape)) / np.reshape(std, shape)


def test_uint8_clips_normalised_per_batch_equal_the_formula_and_the_worker_path() -> None:
    """Caught (planted): pixels scaled by 1/254 instead of 1/255 in `normalise_tensor`, the one
    function both paths share (comparing the paths with each other could not see it)."""
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    clips = np.random.default_rng(0).integers(0, 256, (3, 4, 20, 24, 3), dtype=np.uint8)
    raw = torch.stack([ClipTransform([], 16, mean, std, normalise=False)(c) for c in clips])
    assert raw.dtype == torch.uint8  # (B, T, C, H, W), collated by the workers
    worker = torch.stack([ClipTransform([], 16, mean, std)(clip) for clip in clips])
    device = BatchNormalisation(mean, std)(raw)
    expected = normalised_by_formula(raw, mean, std)
    np.testing.assert_allclose(worker.numpy(), expected, rtol=0, atol=1e-5)
    assert torch.equal(device, worker)


def test_uint8_images_normalised_per_batch_equal_the_formula_and_the_worker_path() -> None:
    """Caught (planted): as for clips, 1/254 instead of 1/255 in `normalise_tensor`."""
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    raw = ImageTransform([], 16, mean, std, normalise=False)(image)  # (C, H, W) uint8
    worker = ImageTransform([], 16, mean, std)(image)
    device = BatchNormalisation(mean, std)(raw[None])[0]
    np.testing.assert_allclose(
        worker.numpy(), normalised_by_formula(raw, mean, std), rtol=0, atol=1e-5
    )
    assert torch.equal(device, worker)


def test_per_frame_max_norm_on_the_device_refuses_photometric_augmentation_naming_the_keys() -> (
    None
):
    # A photometric step must see max-normalised frames, which only the worker path makes.
    photometric = [A.RandomBrightnessContrast(p=1.0)]
    with pytest.raises(ConfigError, match="data.normalise_on_device.*data.per_frame_max_norm"):
        ClipTransform(photometric, 8, [0.5], [0.25], per_frame_max_norm=True, normalise=False)
