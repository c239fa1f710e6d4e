"""Pre-flight: one forward + backward on real items before fit, refusing with the config keys to
change, and leaving every random stream, buffer and gradient as it found them."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from vidlearn.data.datasets import collate
from vidlearn.errors import ConfigError, UserError
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


class StandIn(nn.Module):
    """A model whose forward is `fail(clips)`: raises what a real model would, or a bug."""

    def __init__(self, fail: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.fail = fail

    def forward(self, clips: Tensor) -> Tensor:  # (B, T=2, C=2, H=2, W=2)
        return self.fail(clips) * self.weight


def _raise(error: Exception) -> Callable[[Tensor], Tensor]:
    def fail(clips: Tensor) -> Tensor:
        raise error

    return fail


# Real layers given clips (2, 2, 2, 2, 2) they cannot take, so the messages are torch's own.
SHAPE_FAILURES = {
    "conv kernel larger than the frame": lambda x: nn.Conv2d(2, 1, 5)(x.flatten(0, 1)),
    "conv expecting other channels": lambda x: nn.Conv2d(3, 1, 1)(x.flatten(0, 1)),
    "conv given a 5D clip": lambda x: nn.Conv2d(2, 1, 1)(x),
    "pooling to nothing": lambda x: nn.MaxPool2d(4)(x.flatten(0, 1)),
    "3D pooling to nothing": lambda x: nn.AvgPool3d(4)(x.transpose(1, 2)),
    "linear of another width": lambda x: nn.Linear(99, 1)(x.flatten(1)),
    "view of another size": lambda x: x.view(2, 3, -1),
    "rnn of another width": lambda x: nn.GRU(5, 1, batch_first=True)(x.flatten(2))[0],
    "upsampling to nothing": lambda x: nn.functional.interpolate(x.flatten(0, 1), scale_factor=0.1),
}


@pytest.mark.parametrize("fail", SHAPE_FAILURES.values(), ids=SHAPE_FAILURES.keys())
def test_a_model_that_cannot_take_the_input_shape_is_a_config_error(
    fail: Callable[[Tensor], Tensor],
) -> None:
    with pytest.raises(ConfigError, match=r"(?s)\(2, 2, 2, 2, 2\).*data.frames, data.size"):
        preflight(RegressionTask(StandIn(fail)), RandomClips(), collate)


def test_out_of_memory_names_the_batch_size_and_precision() -> None:
    out_of_memory = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(UserError, match=r"(?s)out of memory.*data.batch_size.*trainer.precision"):
        preflight(RegressionTask(StandIn(_raise(out_of_memory))), RandomClips(), collate)


@pytest.mark.parametrize(
    "bug",
    [
        NotImplementedError("Could not run 'aten::foo' with arguments from the 'CUDA' backend"),
        RuntimeError("a bug in the model"),
        ValueError("a bug in the model"),
    ],
    ids=type,
)
def test_other_failures_keep_their_own_type_and_traceback(bug: Exception) -> None:
    with pytest.raises(type(bug)) as raised:
        preflight(RegressionTask(StandIn(_raise(bug))), RandomClips(), collate)
    assert raised.value is bug and not isinstance(raised.value, UserError)
