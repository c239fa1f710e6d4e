"""A stand-in `batch_augment` that runs the configured one and records each call, so a test can
check that the task really applies it to training batches (and to nothing else).

Importable from tests (setup.cfg puts tests/ on the path); its `_target_` is
`recording_augment.RecordingAugment`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Call:
    batch_size: int
    dtype: torch.dtype
    changed: bool  # whether the inner augmentation changed the inputs


# Every call of every RecordingAugment: the task gets its instance from the config, so the test
# cannot hold it; tests clear this list first.
CALLS: list[Call] = []


class RecordingAugment:
    """Run `inner(inputs, seeds)` and append a `Call` to CALLS."""

    def __init__(self, inner: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.inner = inner

    def __call__(self, inputs: Tensor, seeds: Tensor) -> Tensor:
        out = self.inner(inputs, seeds)
        CALLS.append(Call(len(seeds), inputs.dtype, not torch.equal(out, inputs)))
        return out
