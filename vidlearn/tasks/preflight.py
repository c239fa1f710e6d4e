"""Pre-flight: one training step's forward and backward on real data, before `Trainer.fit`.

`fit` reports a model that cannot take the data's clips from inside a pooling layer, after
workers and the progress bar have started. The pre-flight reads one sample in the main process
(through the training reader and transform), checks the model's stated `input_limits`, runs the
task's forward + loss + backward on a batch of two copies. A failure about the input's shape
(`is_shape_error`: torch's own words from conv, pooling, linear, view, RNN and loss layers)
becomes a ConfigError naming the config keys to change; running out of accelerator memory
becomes a UserError naming the batch size and precision; anything else is a bug and keeps its
type and traceback. Afterwards every random stream, buffer (BatchNorm
statistics) and gradient is as it was, so a run with pre-flight trains exactly as one without.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vidlearn.errors import ConfigError, UserError
from vidlearn.tasks.base import Batch, Task

# Which keys shape the model's input, for the message of a failed pass.
KEYS = "data.frames, data.size, data.channels or the model.* keys"

# torch's messages when a layer is given an input of the wrong shape (torch 2.x, checked against
# real layers in tests/tasks/test_preflight.py). A failure that matches none is not the data's.
SHAPE_ERRORS = re.compile(
    "|".join(
        (
            r"Kernel size can't be greater than actual input size",  # conv, frame too small
            r"Output size is too small",  # pooling, frame or clip too small
            r"smaller than kernel size",  # 3D average pooling, clip too small
            r"expected input\[.*\] to have \d+ channels",  # conv, other channel count
            r"Expected \d+D .*input",  # conv/pool given a tensor of another rank
            r"shapes cannot be multiplied",  # linear, other flattened width
            r"size mismatch",
            r"is invalid for input of size",  # view/reshape
            r"must match the size of tensor",  # broadcasting
            r"input\.size\(-1\) must be equal to input_size",  # RNN, other feature width
            r"Input and output sizes should be greater than 0",  # interpolate to nothing
            r"Padding size should be less than the corresponding input dimension",
            r"Expected input batch_size \(\d+\) to match target batch_size",  # loss
        )
    )
)


def is_shape_error(error: BaseException) -> bool:
    """Whether `error` is torch's complaint about an input's shape, not a bug or resources."""
    return isinstance(error, RuntimeError | ValueError) and bool(SHAPE_ERRORS.search(str(error)))


def preflight(
    task: Task,
    dataset: Dataset,
    collate: Callable[[Sequence[dict]], Batch],
    device: torch.device | str = "cpu",
) -> Tensor:
    """Check that `task` trains on `dataset`'s items; raise ConfigError naming the keys if not.

    `dataset[0]` (a dict with `input` (T, C, H, W) or (C, H, W)) is read once and batched twice
    with `collate`, prepared as training batches are on the device (normalised, augmented), and
    the pass runs on `device`; the task returns to where it was. Returns the prepared inputs
    (2, ...) on the CPU, an example input for the model summary.
    """
    device = torch.device(device)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices), _state_kept(task):
        sample = dataset[0]
        shape = tuple(sample["input"].shape)  # (T, C, H, W) or (C, H, W)
        check_input_limits(task.model, shape)
        batch = collate([sample, sample])
        home = next(task.parameters()).device
        try:
            task.to(device).train()
            on_device = {key: _to(value, device) for key, value in batch.items()}
            inputs = task.prepare_batch(on_device, training=True)[
                "input"
            ]  # (2, T, C, H, W) or (2, C, H, W)
            logits = task(inputs)  # (2, num_outputs)
            loss = task.compute_loss(logits, batch["target"].to(device))
            loss.backward()
        except torch.OutOfMemoryError as error:
            raise UserError(
                f"pre-flight: out of memory on {device} training {type(task.model).__name__} on "
                f"a batch of only 2 inputs of shape {shape}: {error}\nTraining batches of "
                "data.batch_size will not fit either: use trainer.precision=16-mixed (or "
                "bf16-mixed) to halve the activations, or lower data.size or data.frames; then "
                "find the largest data.batch_size that fits."
            ) from error
        except (RuntimeError, ValueError) as error:
            if not is_shape_error(error):
                raise
            raise ConfigError(
                f"pre-flight: {type(task.model).__name__} cannot train on batches of shape "
                f"{(2, *shape)} (B, T, C, H, W or B, C, H, W): {error}\nChange {KEYS} so that "
                "the model and the data agree."
            ) from error
        finally:
            task.to(home)
    return inputs.detach().cpu()


def _to(value: object, device: torch.device) -> object:
    return value.to(device) if isinstance(value, Tensor) else value


def check_input_limits(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """Raise ConfigError when a sample of `shape` breaks the model's stated `input_limits`."""
    limits = getattr(model, "input_limits", None)
    if limits is None:
        return
    frames = shape[0] if len(shape) == 4 else None  # (T, C, H, W) clips, (C, H, W) images
    problems = limits.problems(frames, shape[-1])
    if problems:
        raise ConfigError("; ".join(problems) + ".")


@contextmanager
def _state_kept(task: Task) -> Iterator[None]:
    """Restore Python's and numpy's RNG, and `task`'s buffers, gradients and modes on exit.

    torch's own generators are kept by `torch.random.fork_rng` around this.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    buffers = {name: buffer.detach().clone() for name, buffer in task.named_buffers()}
    modes = {name: module.training for name, module in task.named_modules()}
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        with torch.no_grad():
            for name, buffer in task.named_buffers():
                buffer.copy_(buffers[name])
        for name, module in task.named_modules():
            module.training = modes[name]
        task.zero_grad(set_to_none=True)
