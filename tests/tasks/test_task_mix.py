"""A task's `mix`: training batches only, loss on the mixed labels, metrics on the dominant one,
the same batches with 0 and 2 loader workers, refused by regression."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.device_augment import ClipRandomErasingOnDevice
from vidlearn.errors import ConfigError
from vidlearn.tasks.binary import BinaryTask
from vidlearn.tasks.mix import MixUpCutMix
from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.regression import RegressionTask

SGD = partial(torch.optim.SGD, lr=0.1)
MIX = MixUpCutMix(mixup_alpha=0.8, cutmix_alpha=1.0)


def with_seeds(batch: dict) -> dict:
    return {**batch, "seed": torch.arange(100, 100 + len(batch["target"]))}


def test_regression_refuses_mix_by_name(tiny_net: Callable) -> None:
    with pytest.raises(ConfigError, match="regression task has none to mix: use mix=none"):
        RegressionTask(tiny_net(1), mix=MIX)


def test_evaluation_batches_are_never_mixed(tiny_net: Callable, make_batch: Callable) -> None:
    # mixup: the 2 x 2 frames of these batches are too small for most cutmix boxes
    task = MulticlassTask(tiny_net(3), ["a", "b", "c"], mix=MixUpCutMix(mixup_alpha=0.8))
    batch = with_seeds(make_batch(torch.tensor([0, 1, 2, 0])))
    assert task.prepare_batch(batch, training=False) is batch
    mixed = task.prepare_batch(batch, training=True)
    assert not torch.equal(mixed["input"], batch["input"])


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer
def test_multiclass_trains_on_the_mixed_rows_and_measures_the_dominant_class(
    tiny_net: Callable, make_batch: Callable
) -> None:
    task = MulticlassTask(tiny_net(3), ["a", "b", "c"], mix=MIX)
    batch = task.prepare_batch(with_seeds(make_batch(torch.tensor([0, 1, 2, 2, 1]))), True)
    assert batch["mixed_target"].shape == (5, 3)
    assert torch.equal(batch["target"], batch["mixed_target"].argmax(dim=-1))
    expected = F.cross_entropy(task(batch["input"]), batch["mixed_target"])
    assert task.training_step(batch, 0).item() == pytest.approx(expected.item())


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer
def test_binary_trains_on_the_mixed_values_and_measures_the_dominant_label(
    tiny_net: Callable, make_batch: Callable
) -> None:
    task = BinaryTask(tiny_net(1), ["no", "yes"], mix=MIX, label_smoothing=0.1)
    batch = task.prepare_batch(with_seeds(make_batch(torch.tensor([1.0, 0.0, 0.0, 1.0]))), True)
    soft = batch["mixed_target"]  # (B,) in [0, 1]
    assert torch.equal(batch["target"], (soft >= 0.5).float())
    expected = F.binary_cross_entropy_with_logits(
        task(batch["input"]).squeeze(-1), soft * 0.9 + 0.05
    )
    assert task.training_step(batch, 0).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("task_class", [MulticlassTask, BinaryTask])
def test_a_mixing_task_trains_through_the_trainer(
    task_class: type, tiny_net: Callable, make_batch: Callable, fit: Callable
) -> None:
    outputs, target = (
        (3, torch.tensor([0, 1, 2, 1]))
        if task_class is MulticlassTask
        else (
            1,
            torch.tensor([0.0, 1.0, 1.0, 0.0]),
        )
    )
    classes = ["a", "b", "c"][:outputs] if outputs > 1 else ["no", "yes"]
    task = task_class(tiny_net(outputs), classes, optimizer=SGD, mix=MIX)
    trainer = fit(task, with_seeds(make_batch(target)), repeats=2)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert "mix" not in task.hparams


def test_mixed_and_erased_batches_are_identical_with_0_and_2_workers(demo_videos: Path) -> None:
    """The loader's batches, then the task's on-device step (erasing, then mixing), as training
    runs them: seeds come from the sample keys, so the worker count changes nothing. Planted bug
    caught: each pair's draw seeded from torch's global generator instead of its item seed."""
    task = MulticlassTask(
        torch.nn.Identity(),
        ["0", "1", "2"],
        batch_augment=ClipRandomErasingOnDevice(p=0.5, value="random"),
        mix=MIX,
    )
    batches = {}
    for workers in (0, 2):
        datamodule = VideoDataModule(
            label_kind="multiclass",
            manifest=str(demo_videos),
            frames=4,
            size=32,
            batch_size=5,
            train_clip_sampler=RandomClipSampler(4),
            eval_clip_sampler=CenterClipSampler(4),
            num_workers=workers,
        )
        datamodule.setup("fit")
        batches[workers] = [
            task.prepare_batch(batch, training=True) for batch in datamodule.train_dataloader()
        ]
    assert len(batches[0]) == len(batches[2]) > 1
    for zero, two in zip(batches[0], batches[2], strict=True):
        assert torch.equal(zero["input"], two["input"])
        assert torch.equal(zero["mixed_target"], two["mixed_target"])


@settings(max_examples=10)  # a task per example (~0.1 s each)
@given(
    weights=st.lists(st.floats(0.05, 20.0), min_size=3, max_size=3),
    labels=st.lists(st.integers(0, 2), min_size=1, max_size=8),
    label_smoothing=st.sampled_from([0.0, 0.1]),
)
def test_class_weighted_loss_of_unmixed_rows_equals_the_loss_of_the_labels(
    weights: list[float], labels: list[int], label_smoothing: float
) -> None:
    """One-hot rows (pairs left unmixed) weigh like their labels: the weighted mean over the
    items' weights, as torch's loss of class indices. Failed before the fix (the planted bug it
    catches): torch divides the loss of probability rows by the batch size instead."""
    task = MulticlassTask(
        torch.nn.Identity(), ["a", "b", "c"], class_weights=weights, label_smoothing=label_smoothing
    )
    targets = torch.tensor(labels)
    logits = torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(len(labels)))
    expected = task.compute_loss(logits, targets).item()
    soft = task.compute_loss(logits, task.soft_targets(targets)).item()
    assert soft == pytest.approx(expected, rel=1e-5)
