"""Pre-flight: one forward + backward on real items before fit, refusing with the config keys to
change, and leaving every random stream, buffer and gradient as it found them."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from vidlearn.data.datasets import collate
from vidlearn.errors import ConfigError
from vidlearn.models.limits import InputLimits
from vidlearn.tasks.preflight import preflight
from vidlearn.tasks.regression import RegressionTask


class NormNet(nn.Module):
    """(B, T=2, C=2, H=2, W=2) -> (B, 1) through BatchNorm and Dropout: buffers and RNG in use."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 1)
        )
        self.input_limits = InputLimits("model=norm_net", min_frames=2)

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        return self.layers(clips)  # (B, 1)


class RandomClips:
    """Items with clips (frames, 2, 2, 2) that draw from Python's, numpy's and torch's RNG."""

    def __init__(self, frames: int = 2) -> None:
        self.frames = frames

    def __getitem__(self, index: int) -> dict:
        scale = random.random() + np.random.rand()
        clip = torch.rand(self.frames, 2, 2, 2) * scale  # (T, C, H, W)
        return {"input": clip, "target": torch.tensor(1.0), "index": index, "skipped": []}


def random_draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_preflight_leaves_random_streams_buffers_and_gradients_as_they_were() -> None:
    task = RegressionTask(NormNet())
    task.eval()
    buffers = {name: buffer.clone() for name, buffer in task.named_buffers()}
    state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    expected = random_draws()
    random.setstate(state[0]), np.random.set_state(state[1]), torch.set_rng_state(state[2])

    preflight(task, RandomClips(), collate)

    assert random_draws() == expected
    assert all(torch.equal(buffer, buffers[name]) for name, buffer in task.named_buffers())
    assert all(parameter.grad is None for parameter in task.parameters())
    assert not task.training


def test_preflight_refuses_clips_outside_the_models_stated_limits() -> None:
    with pytest.raises(
        ConfigError, match=r"model=norm_net needs data.frames >= 2 .*got data.frames=1"
    ):
        preflight(RegressionTask(NormNet()), RandomClips(frames=1), collate)


def test_a_failing_training_step_becomes_a_config_error_naming_the_data_keys() -> None:
    with pytest.raises(
        ConfigError, match=r"(?s)batches of shape \(2, 3, 2, 2, 2\).*data.frames"
    ) as error:
        preflight(RegressionTask(NormNet()), RandomClips(frames=3), collate)
    assert isinstance(error.value.__cause__, RuntimeError)  # the layer's own words stay chained
