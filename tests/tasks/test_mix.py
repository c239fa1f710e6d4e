"""MixUpCutMix: one draw per pair of items, the same for every frame and for the labels."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from vidlearn.errors import ConfigError
from vidlearn.tasks.mix import MixUpCutMix

alphas = st.sampled_from([1e-6, 0.2, 0.8, 1.0, 5.0, 1e6])  # tiny to huge
probabilities = st.sampled_from([0.0, 0.3, 1.0])
shapes = st.tuples(
    st.integers(1, 7),  # B: 1, odd and even
    st.sampled_from([(), (3,)]),  # images (B, C, H, W) or clips (B, T, C, H, W)
    st.integers(1, 2),  # C
    st.integers(1, 9),  # H
    st.integers(1, 9),  # W
)
seed_lists = st.lists(st.integers(0, 2**62 - 1), min_size=7, max_size=7)


def distinct_labels(batch: int) -> torch.Tensor:
    """(B, B) one-hot rows, a class per item, so an item's own weight can be read back."""
    return F.one_hot(torch.arange(batch), batch).float()


def random_inputs(shape: tuple, seed: int = 0) -> torch.Tensor:
    batch, frames, channels, height, width = shape
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *frames, channels, height, width, generator=generator)


def constant_inputs(shape: tuple) -> torch.Tensor:
    """Item b is b + 1 everywhere, so each pixel says which item it came from."""
    batch, frames, channels, height, width = shape
    values = torch.arange(1, batch + 1, dtype=torch.float32)
    return values.view(-1, *(1,) * (len(frames) + 3)).expand(-1, *frames, channels, height, width)


@given(shape=shapes, alpha=alphas, prob=probabilities, seeds=seed_lists)
def test_mixup_blends_each_input_with_the_weight_of_its_label(
    shape: tuple, alpha: float, prob: float, seeds: list[int]
) -> None:
    """mixed x_i == lam x_i + (1 - lam) x_{B-1-i} exactly, lam read back from the mixed label.

    Planted bugs caught: labels mixed with the draw of the pair's second item (a different lam),
    and the inputs blended with the batch rolled by one instead of flipped."""
    batch = shape[0]
    inputs = random_inputs(shape)
    mixed, targets = MixUpCutMix(mixup_alpha=alpha, prob=prob)(
        inputs, distinct_labels(batch), torch.tensor(seeds[:batch])
    )
    for item in range(batch):
        partner = batch - 1 - item
        lam = targets[item, item]
        if partner == item:  # the middle of an odd batch pairs with itself: untouched
            assert torch.equal(mixed[item], inputs[item]) and lam == 1
            continue
        assert torch.equal(mixed[item], lam * inputs[item] + (1 - lam) * inputs[partner])
        assert targets[item, partner] == 1 - lam and targets[partner, partner] == lam
        assert targets[item].sum() == pytest.approx(1.0)


@given(shape=shapes, alpha=alphas, prob=probabilities, seeds=seed_lists)
def test_cutmix_swaps_one_box_for_every_frame_weighted_by_its_clipped_area(
    shape: tuple, alpha: float, prob: float, seeds: list[int]
) -> None:
    """Pixels from the partner form one rectangle inside the frame, the same on every frame and
    channel, of area (1 - lam) H W with lam read back from the label; the rest is the item's own.

    Planted bugs caught: lam left uncorrected (the Beta draw instead of the clipped area), the
    box moved by a pixel on every frame after the first, and labels mixed with the draw of the
    pair's second item."""
    batch, height, width = shape[0], shape[3], shape[4]
    inputs = constant_inputs(shape)
    mixed, targets = MixUpCutMix(cutmix_alpha=alpha, prob=prob)(
        inputs, distinct_labels(batch), torch.tensor(seeds[:batch])
    )
    for item in range(batch):
        partner = batch - 1 - item
        from_partner = mixed[item] == partner + 1  # (..., H, W)
        assert torch.equal(mixed[item][~from_partner], inputs[item][~from_partner])
        box = from_partner.reshape(-1, height, width)  # (T*C, H, W)
        assert torch.equal(box, box[:1].expand_as(box))  # every frame and channel alike
        rows, columns = box[0].any(dim=1), box[0].any(dim=0)
        assert torch.equal(box[0], rows[:, None] & columns[None, :])  # a rectangle
        lam = targets[item, item].item()
        expected = 1.0 if partner == item else 1 - box[0].float().mean().item()
        assert lam == pytest.approx(expected, abs=1e-6)
        assert targets[item].sum() == pytest.approx(1.0)


@given(shape=shapes, prob=probabilities, seeds=seed_lists)
def test_mixup_or_cutmix_moves_as_much_input_as_label_between_partners(
    shape: tuple, prob: float, seeds: list[int]
) -> None:
    """With constant items, the mean of a mixed input is lam c_i + (1 - lam) c_j, whichever of
    the two a pair drew. Planted bugs caught: cutmix labels weighed by the Beta draw instead of
    the clipped box's area, and the inputs paired with the batch rolled by one."""
    batch = shape[0]
    inputs = constant_inputs(shape)
    mixed, targets = MixUpCutMix(mixup_alpha=0.8, cutmix_alpha=1.0, prob=prob)(
        inputs, distinct_labels(batch), torch.tensor(seeds[:batch])
    )
    for item in range(batch):
        partner = batch - 1 - item
        lam = targets[item, item].item()
        expected = lam * (item + 1) + (1 - lam) * (partner + 1)
        assert mixed[item].mean().item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "mix", [MixUpCutMix(mixup_alpha=1.0), MixUpCutMix(cutmix_alpha=1.0)], ids=["mixup", "cutmix"]
)
def test_every_frame_of_a_clip_is_mixed_alike(mix: MixUpCutMix) -> None:
    frame = torch.randn(4, 1, 3, 16, 16)
    clips = frame.expand(-1, 5, -1, -1, -1)  # (B=4, T=5, 3, 16, 16), identical frames
    mixed, _ = mix(clips, distinct_labels(4), torch.arange(4))
    assert torch.equal(mixed, mixed[:, :1].expand_as(mixed))
    assert not torch.equal(mixed, clips)


def test_a_pair_mixes_by_its_first_seed_alone_whatever_the_rest_of_the_batch() -> None:
    mix = MixUpCutMix(mixup_alpha=0.8, cutmix_alpha=1.0)
    inputs = torch.randn(4, 2, 1, 8, 8)
    _, four = mix(inputs, distinct_labels(4), torch.tensor([11, 12, 13, 14]))
    _, two = mix(inputs[[0, 3]], distinct_labels(2), torch.tensor([11, 99]))
    assert four[0, 0] == two[0, 0] and four[3, 3] == two[1, 1]


def test_prob_0_leaves_the_batch_as_it_is() -> None:
    inputs, labels = torch.randn(6, 2, 3, 8, 8), distinct_labels(6)
    mixed, targets = MixUpCutMix(mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.0)(
        inputs, labels, torch.arange(6)
    )
    assert torch.equal(mixed, inputs) and torch.equal(targets, labels)


def test_binary_targets_0_1_are_mixed_as_values() -> None:
    inputs = torch.zeros(2, 3, 4, 4)
    _, targets = MixUpCutMix(mixup_alpha=1.0)(
        inputs, torch.tensor([1.0, 0.0]), torch.tensor([3, 4])
    )
    assert targets.shape == (2,) and 0 < targets[0] < 1
    assert targets[0].item() == pytest.approx(1 - targets[1].item())


@pytest.mark.parametrize(
    "options",
    [
        dict(mixup_alpha=0.0, cutmix_alpha=0.0),
        dict(mixup_alpha=-1.0),
        dict(mixup_alpha=1.0, prob=1.5),
        dict(cutmix_alpha=1.0, switch_prob=-0.1),
        dict(mixup_alpha=math.nan),  # accepted before: numpy's Beta draw then failed mid-epoch
        dict(cutmix_alpha=math.inf),
    ],
)
def test_out_of_range_options_are_config_errors(options: dict) -> None:
    with pytest.raises(ConfigError, match="mix"):
        MixUpCutMix(**options)
