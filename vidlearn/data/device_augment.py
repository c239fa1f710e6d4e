"""Clip augmentation on the accelerator: one affine warp, one brightness/contrast change and one
erased box per clip, for a whole batch at once.

The LightningModule calls it after the batch reaches the device (`on_after_batch_transfer`,
training only), so workers only decode, resize and normalise. Each clip's parameters come from
its own seed (`batch["seed"]`, drawn by the dataset from the item's key, see
`vidlearn.data.sample_keys`), so the result does not depend on the worker count nor on the
device, and a resumed run draws the same parameters. Every frame of a clip gets the same warp
by construction: the frames are stacked as channels and warped by one `grid_sample` call.

The parameters mirror albumentations' `Affine` as the worker path uses it (rotation in degrees
about the centre, positive = counter-clockwise as in OpenCV; translation as a fraction of the
width and height, applied in whole pixels; isotropic scale), with bilinear sampling and black outside the frame, so the
two paths agree in distribution (tested). `ClipBrightnessContrastOnDevice` is albumentations'
`RandomBrightnessContrast` (brightness_by_max) with the same ranges; `ClipRandomErasingOnDevice`
is timm's `RandomErasing` with one box (and one noise patch) for every frame; `DeviceAugmentations` runs
several in order, each from its own stream of the clip's seed. This module imports torch (and vidlearn.errors) only: the task receives it
as a callable and never imports `vidlearn.data`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vidlearn.errors import ConfigError


def _check_probability(p: float, key: str) -> None:
    """Refuse a `p` outside [0, 1]; `key` names it in the error ("erasing.p")."""
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{key}={p} must be a probability in [0, 1]")


def _range(value: float | Sequence[float], key: str) -> tuple[float, float]:
    """`x` -> (-x, x); `[low, high]` -> (low, high), checked; `key` names it in errors."""
    if isinstance(value, int | float):
        low, high = -float(value), float(value)
    elif len(value) == 2:
        low, high = (float(v) for v in value)
    else:
        raise ConfigError(f"{key}={list(value)}: give one number or [low, high]")
    if low > high:
        raise ConfigError(
            f"{key}={[low, high]}: the low end is above the high; give [low, high] with low <= high"
        )
    return low, high


class ClipAffineOnDevice:
    """Rotate, shift and scale every clip of a batch on its device, one draw per clip.

    `clips` `(B, T, C, H, W)` or images `(B, C, H, W)`, float, normalised with `mean`/`std`
    (so "black" outside the frame is `-mean / std`); `seeds` `(B,)` int64.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        rotate: float | Sequence[float] = 0.0,
        translate_x: float | Sequence[float] = 0.0,
        translate_y: float | Sequence[float] = 0.0,
        scale: Sequence[float] = (1.0, 1.0),
        p: float = 1.0,
    ) -> None:
        name = f"augment.device: {type(self).__name__}"
        _check_probability(p, f"{name} p")
        self.rotate = _range(rotate, f"{name} rotate")
        self.translate_x = _range(translate_x, f"{name} translate_x")
        self.translate_y = _range(translate_y, f"{name} translate_y")
        self.scale = _range(scale, f"{name} scale")
        if self.scale[0] <= 0:
            raise ConfigError(f"{name} scale={list(self.scale)} must be > 0 (1 keeps the size)")
        self.p = p
        self.fill = [-m / s for m, s in zip(mean, std, strict=True)]

    def draw(self, seed: int) -> tuple[float, float, float, float]:
        """(angle degrees, shift x fraction, shift y fraction, scale) of one clip; identity if skipped."""
        generator = torch.Generator().manual_seed(seed)
        uniform = torch.rand(5, generator=generator, dtype=torch.float64).tolist()
        if uniform[0] >= self.p:
            return 0.0, 0.0, 0.0, 1.0
        ranges = (self.rotate, self.translate_x, self.translate_y, self.scale)
        angle, shift_x, shift_y, scale = (
            low + (high - low) * u for (low, high), u in zip(ranges, uniform[1:], strict=True)
        )
        return angle, shift_x, shift_y, scale

    def matrices(self, seeds: Tensor, height: int, width: int) -> Tensor:
        """`(B, 2, 3)` float64 affine_grid matrices: output -> input in normalised coordinates."""
        thetas = []
        # pixel (x, y) -> normalised (align_corners=False): x_n = (2 x + 1) / W - 1
        to_unit = torch.tensor(
            [
                [2.0 / width, 0.0, 1.0 / width - 1.0],
                [0.0, 2.0 / height, 1.0 / height - 1.0],
                [0, 0, 1],
            ],
            dtype=torch.float64,
        )
        centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
        for seed in seeds.tolist():
            angle, shift_x, shift_y, scale = self.draw(int(seed))
            # whole pixels, truncated towards 0, as albumentations' Affine shifts
            shift_x, shift_y = math.trunc(shift_x * width), math.trunc(shift_y * height)
            a = scale * math.cos(math.radians(angle))
            b = scale * math.sin(math.radians(angle))
            forward = torch.tensor(  # as cv2.getRotationMatrix2D, then the shift
                [
                    [a, b, (1 - a) * centre_x - b * centre_y + shift_x],
                    [-b, a, b * centre_x + (1 - a) * centre_y + shift_y],
                    [0.0, 0.0, 1.0],
                ],
                dtype=torch.float64,
            )
            thetas.append((to_unit @ torch.linalg.inv(forward) @ torch.linalg.inv(to_unit))[:2])
        return torch.stack(thetas)  # (B, 2, 3)

    def __call__(self, clips: Tensor, seeds: Tensor) -> Tensor:
        shape = clips.shape
        batch, channels = shape[0], shape[-3]
        height, width = shape[-2:]
        stacked = clips.reshape(batch, -1, height, width)  # (B, T*C, H, W): one warp per clip
        fill = torch.tensor(self.fill, dtype=clips.dtype, device=clips.device)
        fill = fill.expand(channels) if len(self.fill) == 1 else fill
        fill = fill.repeat(stacked.shape[1] // channels).view(1, -1, 1, 1)  # (1, T*C, 1, 1)
        theta = self.matrices(seeds, height, width).to(device=clips.device, dtype=clips.dtype)
        grid = F.affine_grid(theta, list(stacked.shape), align_corners=False)
        warped = F.grid_sample(
            stacked - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return (warped + fill).view(shape)


class ClipBrightnessContrastOnDevice:
    """Change the contrast and brightness of every clip of a batch on its device, one draw per clip.

    As albumentations' `RandomBrightnessContrast` with `brightness_by_max=True`: in pixel units
    x in [0, 1], x -> clip(alpha * x + beta, 0, 1) with alpha = 1 + U(contrast) and
    beta = U(brightness), applied with probability `p`; a number `b` means the range [-b, b].
    `clips` `(B, T, C, H, W)` or images `(B, C, H, W)`, float, normalised with `mean`/`std`;
    `seeds` `(B,)` int64.
    """

    # Its generator is seeded with seed + STREAM, so its draws are independent of the warp's.
    STREAM = 1

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        brightness: float | Sequence[float] = 0.0,
        contrast: float | Sequence[float] = 0.0,
        p: float = 1.0,
    ) -> None:
        name = f"augment.device: {type(self).__name__}"
        _check_probability(p, f"{name} p")
        self.brightness = _range(brightness, f"{name} brightness")
        self.contrast = _range(contrast, f"{name} contrast")
        self.p = p
        self.mean, self.std = list(mean), list(std)

    def draw(self, seed: int) -> tuple[float, float]:
        """(alpha, beta) of one clip: contrast factor and brightness shift; (1, 0) if skipped."""
        generator = torch.Generator().manual_seed(seed + self.STREAM)
        uniform = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
        if uniform[0] >= self.p:
            return 1.0, 0.0
        (low_c, high_c), (low_b, high_b) = self.contrast, self.brightness
        return 1.0 + low_c + (high_c - low_c) * uniform[1], low_b + (high_b - low_b) * uniform[2]

    def __call__(self, clips: Tensor, seeds: Tensor) -> Tensor:
        draws = torch.tensor([self.draw(int(seed)) for seed in seeds.tolist()], dtype=clips.dtype)
        shape = (len(seeds),) + (1,) * (clips.dim() - 1)  # (B, 1, ..., 1)
        alpha, beta = (column.view(shape).to(clips.device) for column in draws.unbind(1))
        channels = (-1, 1, 1)  # (C, 1, 1): the per-channel mean and std broadcast over H, W
        mean = torch.tensor(self.mean, dtype=clips.dtype, device=clips.device).view(channels)
        std = torch.tensor(self.std, dtype=clips.dtype, device=clips.device).view(channels)
        pixels = (clips * std + mean) * alpha + beta  # in [0, 1] units
        return (pixels.clamp(0.0, 1.0) - mean) / std


ERASING_VALUES = ("zero", "random")


class ClipRandomErasingOnDevice:
    """Erase one box of every clip of a batch on its device, the same box on every frame.

    As timm's `RandomErasing` on normalised inputs: with probability `p`, up to `attempts` boxes
    of a random fraction `area` of the frame and a log-uniform `aspect` (height / width) are
    tried until one fits inside the frame (none fits: the clip is left as it is); the box is set
    to 0 (`value="zero"`, the mean colour) or to standard normal noise (`value="random"`), the
    same patch on every frame, so the erased object stays still rather than flickering.
    `clips` `(B, T, C, H, W)` or images `(B, C, H, W)`, float, normalised; `seeds` `(B,)` int64.
    """

    # Its generator is seeded with seed + STREAM, so its draws are independent of the others'.
    STREAM = 2

    def __init__(
        self,
        p: float = 0.25,
        area: Sequence[float] = (0.02, 1 / 3),
        aspect: Sequence[float] = (0.3, 1 / 0.3),
        value: str = "zero",
        attempts: int = 10,
    ) -> None:
        _check_probability(p, "erasing.p")
        self.area = _range(area, "erasing.area")
        self.aspect = _range(aspect, "erasing.aspect")
        # written so that NaN fails each test
        if not 0.0 < self.area[0] <= self.area[1] <= 1.0:
            raise ConfigError(
                f"erasing.area={list(self.area)} must lie in (0, 1]: fractions of the frame's area"
            )
        if not 0.0 < self.aspect[0] <= self.aspect[1] < math.inf:
            raise ConfigError(
                f"erasing.aspect={list(self.aspect)} must be finite and > 0 (height / width)"
            )
        if value not in ERASING_VALUES:
            raise ConfigError(f"erasing.value={value!r} must be one of {ERASING_VALUES}")
        if not isinstance(attempts, int) or attempts < 1:
            raise ConfigError(f"erasing.attempts={attempts} must be >= 1")
        self.p = p
        self.value = value
        self.attempts = attempts

    def draw(self, seed: int, height: int, width: int) -> tuple[int, int, int, int] | None:
        """(top, left, box height, box width) of one clip's box, or None: not erased."""
        return self._box(torch.Generator().manual_seed(seed + self.STREAM), height, width)

    def _box(
        self, generator: torch.Generator, height: int, width: int
    ) -> tuple[int, int, int, int] | None:
        # a fixed number of draws whatever the outcome, so the noise after them is reproducible
        uniform = torch.rand(1 + 4 * self.attempts, generator=generator, dtype=torch.float64)
        if uniform[0] >= self.p:
            return None
        (low_area, high_area), (low_aspect, high_aspect) = self.area, self.aspect
        log_low, log_high = math.log(low_aspect), math.log(high_aspect)
        for u_area, u_aspect, u_top, u_left in uniform[1:].view(-1, 4).tolist():
            target = (low_area + (high_area - low_area) * u_area) * height * width
            aspect = math.exp(log_low + (log_high - log_low) * u_aspect)
            box_h, box_w = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < box_h < height and 0 < box_w < width:  # timm's rule: strictly inside
                top = math.floor(u_top * (height - box_h + 1))
                left = math.floor(u_left * (width - box_w + 1))
                return top, left, box_h, box_w
        return None

    def __call__(self, clips: Tensor, seeds: Tensor) -> Tensor:
        height, width = clips.shape[-2:]
        channels = clips.shape[-3]
        out = clips.clone()
        for item, seed in enumerate(seeds.tolist()):
            generator = torch.Generator().manual_seed(int(seed) + self.STREAM)
            box = self._box(generator, height, width)
            if box is None:
                continue
            top, left, box_h, box_w = box
            if self.value == "zero":
                fill = torch.zeros((), dtype=clips.dtype, device=clips.device)
            else:  # one noise patch (C, h, w), broadcast over the frames
                noise = torch.randn(channels, box_h, box_w, generator=generator)
                fill = noise.to(device=clips.device, dtype=clips.dtype)
            out[item, ..., top : top + box_h, left : left + box_w] = fill
        return out


class DeviceAugmentations:
    """Device augmentations `(inputs, seeds) -> inputs` run in order, as one `batch_augment`."""

    def __init__(self, steps: Sequence[Callable[[Tensor, Tensor], Tensor]]) -> None:
        self.steps = list(steps)

    def __call__(self, clips: Tensor, seeds: Tensor) -> Tensor:
        for step in self.steps:
            clips = step(clips, seeds)
        return clips
