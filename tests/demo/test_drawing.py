"""Specification of the shared drawing helpers (vidlearn/demo/drawing.py)."""

from __future__ import annotations

import numpy as np

from vidlearn.demo.drawing import disc_coverage, gradient_background, shuffled_counts


def test_shuffled_counts_gives_each_value_its_rounded_share() -> None:
    values = shuffled_counts(np.random.default_rng(0), 10, ("a", "b", "c"), (0.5, 0.32, 0.18))
    assert [int(np.sum(values == name)) for name in "abc"] == [5, 3, 2]


def test_shuffled_counts_shuffles() -> None:
    values = shuffled_counts(np.random.default_rng(0), 100, (0, 1), (0.5, 0.5))
    assert not np.array_equal(values, np.sort(values))


def test_disc_coverage_is_full_inside_and_empty_outside() -> None:
    coverage = disc_coverage(9, 9, centre_y=4.0, centre_x=4.0, radius=2.0)
    assert coverage[4, 5] == 1.0 and coverage[4, 8] == 0.0


def test_gradient_background_stays_in_the_byte_range() -> None:
    background = gradient_background(np.random.default_rng(0), 16, 24)
    assert background.shape == (16, 24, 3) and background.min() >= 0 and background.max() <= 255
