"""A task's `batch_augment`: applied to training batches on the device, never to evaluation."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from vidlearn.tasks.multiclass import MulticlassTask

CLASSES = ["a", "b"]


class RecordingAugment:
    """Adds 1 to the inputs and records the seeds it was called with."""

    def __init__(self) -> None:
        self.seeds: list[list[int]] = []

    def __call__(self, inputs: Tensor, seeds: Tensor) -> Tensor:
        self.seeds.append(seeds.tolist())
        return inputs + 1.0


def with_seeds(batch: dict, seeds: list[int]) -> dict:
    return {**batch, "seed": torch.tensor(seeds)}


def test_batch_augment_runs_on_training_batches_with_their_seeds(
    tiny_net: Callable, make_batch: Callable, fit: Callable
) -> None:
    augment = RecordingAugment()
    task = MulticlassTask(
        tiny_net(2), CLASSES, optimizer=partial(torch.optim.SGD, lr=0.1), batch_augment=augment
    )
    train = with_seeds(make_batch(torch.tensor([0, 1, 0, 1])), [5, 6, 7, 8])
    val = with_seeds(make_batch(torch.tensor([0, 1]), seed=1), [1, 2])
    fit(task, train, repeats=2, val_batch=val)
    assert augment.seeds == [[5, 6, 7, 8], [5, 6, 7, 8]]  # two training steps, no validation


def test_batch_augment_is_not_stored_in_the_checkpoint_hyperparameters(tiny_net: Callable) -> None:
    task = MulticlassTask(tiny_net(2), CLASSES, batch_augment=RecordingAugment())
    assert "batch_augment" not in task.hparams
