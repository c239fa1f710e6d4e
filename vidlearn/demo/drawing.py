"""What the demo generators draw: random values in exact shares, colours, backgrounds, soft shapes.

Images here are float32 `(H, W, 3)` arrays in [0, 255] until `to_uint8`, so several layers can be
blended before one rounding step.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np


def hsv_colour(hue: float, saturation: float, value: float) -> np.ndarray:
    """An RGB colour `(3,) float32` in [0, 255]; `hue` wraps around 1, the rest are in [0, 1]."""
    return np.asarray(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), dtype=np.float32) * 255.0


def gradient_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A linear gradient between two muted random colours along a random direction.

    Returns `(H, W, 3) float32` in [0, 255]. Muted (low saturation, mid value) so that saturated
    foreground objects stay visible on every background.
    """
    start, end = (
        hsv_colour(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.5), rng.uniform(0.2, 0.7))
        for _ in range(2)
    )
    angle = rng.uniform(0.0, 2.0 * np.pi)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = np.cos(angle) * columns / max(width - 1, 1) + np.sin(angle) * rows / max(height - 1, 1)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)  # (H, W) in [0, 1]
    return start + (end - start) * ramp[..., None]


def disc_coverage(
    height: int, width: int, centre_y: float, centre_x: float, radius: float
) -> np.ndarray:
    """Anti-aliased coverage `(H, W) float32` in [0, 1] of a disc: 1 inside, a 1 px soft edge."""
    rows, columns = np.ogrid[0:height, 0:width]
    distance = np.sqrt((rows - centre_y) ** 2 + (columns - centre_x) ** 2)
    return np.clip(radius + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def square_coverage(
    height: int, width: int, centre_y: float, centre_x: float, half_side: float
) -> np.ndarray:
    """Anti-aliased coverage `(H, W) float32` in [0, 1] of an axis-aligned square."""
    rows, columns = np.ogrid[0:height, 0:width]
    distance = np.maximum(np.abs(rows - centre_y), np.abs(columns - centre_x))
    return np.clip(half_side + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def paint(image: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Blend `colour (3,)` over `image (H, W, 3)` where `coverage (H, W)` says how much."""
    return image + (colour - image) * coverage[..., None]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip a float image in [0, 255] to uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def shuffled_counts(
    rng: np.random.Generator, num_items: int, values: Sequence[object], proportions: Sequence[float]
) -> np.ndarray:
    """Return `num_items` values in random order, each present in its exact share (rounded).

    Shares are rounded by largest remainder, so counts sum to `num_items` and tests can assert
    exact counts instead of "about 10%".
    """
    proportions = np.asarray(proportions, dtype=float)
    if len(values) != len(proportions) or np.any(proportions < 0) or proportions.sum() <= 0:
        raise ValueError(
            f"proportions {proportions.tolist()} must be one non-negative number per value "
            f"({len(values)} values) with a positive sum."
        )
    exact = num_items * proportions / proportions.sum()
    counts = np.floor(exact).astype(np.int64)
    remainder_order = np.argsort(-(exact - counts), kind="stable")
    counts[remainder_order[: num_items - counts.sum()]] += 1
    assignment = np.repeat(np.arange(len(values)), counts)
    return np.asarray(values)[rng.permutation(assignment)]
