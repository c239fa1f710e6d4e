"""Mixup and cutmix of training batches on the device, one draw per pair of items.

The batch is paired with itself reversed, as timm's `Mixup` in "pair" mode: item i and item
B-1-i form a pair (the middle item of an odd batch pairs with itself and is left as it is).
Each pair takes one draw from the seed of its first item (`batch["seed"]`, drawn by the dataset
from the item's sample key), so a batch mixes the same way whatever `data.num_workers` is, and
a resumed run mixes as the uninterrupted one did:

- mixup: `x_i <- lam x_i + (1 - lam) x_j` with lam ~ Beta(mixup_alpha, mixup_alpha);
- cutmix: the same box of x_j is pasted into x_i on every frame (and x_i's into x_j); its size
  follows lam ~ Beta(cutmix_alpha, cutmix_alpha) as in timm's `rand_bbox`, and lam is then
  corrected to 1 - (box area after clipping to the frame) / (frame area).

Targets are mixed with the same lam, `t_i <- lam t_i + (1 - lam) t_j`, as float rows (one-hot
rows for multiclass, 0/1 values for binary; the task converts them). With probability
`1 - prob` a pair is not mixed (lam = 1); with both alphas above 0, a pair uses cutmix with
probability `switch_prob`, else mixup. The task calls it (`Task(mix=...)`) because it changes
the targets; torch and numpy only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from vidlearn.errors import ConfigError


class MixDraw(NamedTuple):
    """One pair's draw: the weight of the item's own input and label, and cutmix's box."""

    lam: float  # in [0, 1]; 1 = not mixed
    box: tuple[int, int, int, int] | None  # (top, bottom, left, right), end exclusive; None: mixup


class MixUpCutMix:
    """Mix the inputs and soft targets of a training batch in pairs; see the module docstring.

    `inputs` `(B, T, C, H, W)` clips or `(B, C, H, W)` images, float; `targets` `(B, ...)` float
    (one-hot rows or 0/1 values); `seeds` `(B,)` int64. Returns the mixed inputs and targets.
    """

    # first word of each pair's generator seed, so its draws share no stream with the
    # augmentations seeded from the same item seed
    STREAM = 0x6D697875  # "mixu"

    def __init__(
        self,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
    ) -> None:
        finite = all(0 <= alpha < math.inf for alpha in (mixup_alpha, cutmix_alpha))  # NaN: no
        if not finite or mixup_alpha == cutmix_alpha == 0:
            raise ConfigError(
                f"mix.mixup_alpha={mixup_alpha} and mix.cutmix_alpha={cutmix_alpha}: each must "
                "be a finite number >= 0 and at least one > 0 (0 turns that one off); to mix "
                "nothing, use mix=none."
            )
        for name, value in (("prob", prob), ("switch_prob", switch_prob)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"mix.{name}={value} must be a probability in [0, 1].")
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)

    def draw(self, seed: int, height: int, width: int) -> MixDraw:
        """The draw of the pair whose first item has `seed`, for frames of height x width."""
        generator = np.random.default_rng((self.STREAM, seed))
        applied, switch = generator.random(2)  # always drawn, so later draws keep their place
        if applied >= self.prob:
            return MixDraw(1.0, None)
        use_cutmix = self.mixup_alpha == 0 or (self.cutmix_alpha > 0 and switch < self.switch_prob)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(np.clip(generator.beta(alpha, alpha), 0.0, 1.0))
        if not use_cutmix:
            return MixDraw(lam, None)
        # a box of sides sqrt(1 - lam) of the frame's, centred anywhere, clipped to the frame
        ratio = math.sqrt(1.0 - lam)
        half_h, half_w = int(height * ratio) // 2, int(width * ratio) // 2
        centre_y, centre_x = int(generator.integers(height)), int(generator.integers(width))
        top, bottom = max(centre_y - half_h, 0), min(centre_y + half_h, height)
        left, right = max(centre_x - half_w, 0), min(centre_x + half_w, width)
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        return MixDraw(lam, (top, bottom, left, right))

    def __call__(self, inputs: Tensor, targets: Tensor, seeds: Tensor) -> tuple[Tensor, Tensor]:
        batch = inputs.shape[0]
        height, width = inputs.shape[-2:]
        mixup_lam = torch.ones(batch, dtype=torch.float64)  # (B,) weight of the own input
        label_lam = torch.ones(batch, dtype=torch.float64)  # (B,) weight of the own label
        pasted = torch.zeros(batch, height, width, dtype=torch.bool)  # (B, H, W) partner's pixels
        seed_list = seeds.tolist()
        for first in range(batch // 2):
            pair = [first, batch - 1 - first]
            draw = self.draw(int(seed_list[first]), height, width)
            label_lam[pair] = draw.lam
            if draw.box is None:
                mixup_lam[pair] = draw.lam
            else:
                top, bottom, left, right = draw.box
                pasted[pair, top:bottom, left:right] = True
        partner = inputs.flip(0)
        own = mixup_lam.to(inputs.dtype).view((batch,) + (1,) * (inputs.dim() - 1))
        blended = own.to(inputs.device) * inputs + (1 - own.to(inputs.device)) * partner
        # (B, 1, ..., H, W): one box for every frame and channel of the item
        box = pasted.view((batch,) + (1,) * (inputs.dim() - 3) + (height, width))
        mixed_inputs = torch.where(box.to(inputs.device), partner, blended)
        weight = label_lam.to(targets.dtype).view((batch,) + (1,) * (targets.dim() - 1))
        weight = weight.to(targets.device)
        mixed_targets = weight * targets + (1 - weight) * targets.flip(0)
        return mixed_inputs, mixed_targets
