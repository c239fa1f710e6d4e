"""What a task does when the training loss becomes NaN or infinite."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from vidlearn.tasks.base import NonFiniteLossError
from vidlearn.tasks.multiclass import MulticlassTask

ADAM = partial(torch.optim.Adam, lr=0.02)
CLASSES = ["a", "b", "c"]


def _nan_batch(make_batch) -> dict:
    batch = make_batch(torch.tensor([0, 1, 2]))
    batch["input"][1] = float("nan")
    batch["index"] = torch.tensor([12, 7, 30])
    return batch


def test_nonfinite_loss_raises_an_error_carrying_the_batch_indices(tiny_net, make_batch) -> None:
    task = MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAM)
    with pytest.raises(NonFiniteLossError, match=r"\[12, 7, 30\]") as caught:
        task.training_step(_nan_batch(make_batch), 0)
    assert caught.value.indices == [12, 7, 30]


def test_skip_mode_leaves_the_parameters_unchanged(tiny_net, make_batch, fit) -> None:
    task = MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAM, on_nonfinite_loss="skip")
    before = [p.detach().clone() for p in task.parameters()]
    fit(task, _nan_batch(make_batch), repeats=2)
    after = list(task.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_unknown_nonfinite_mode_is_rejected(tiny_net) -> None:
    with pytest.raises(ValueError, match="on_nonfinite_loss"):
        MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAM, on_nonfinite_loss="ignore")
