"""RegressionTask: losses, target standardisation and metrics in the targets' units."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from vidlearn.tasks.regression import RegressionTask

ADAM = partial(torch.optim.Adam, lr=0.02)
TARGET = torch.tensor([55.0, 62.0, 48.0, 70.0, 35.0, 66.0, 58.0, 41.0])  # e.g. ejection fraction %


def test_regression_task_with_rmse_loss_overfits_one_batch(
    tiny_net, make_batch, fit, validate
) -> None:
    stats = (TARGET.mean().item(), TARGET.std().item())
    task = RegressionTask(
        tiny_net(1), optimizer=ADAM, loss="rmse", standardize_targets=True, target_stats=stats
    )
    batch = make_batch(TARGET)
    fit(task, batch, repeats=150)
    metrics = validate(task, batch)
    assert metrics["val/mae"] < 1.0  # percentage points
    assert metrics["val/r2"] > 0.99


class ConstantOutput(torch.nn.Module):
    """Always outputs `value` (standardised units when the task standardises)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.full((len(inputs), 1), self.value)


def test_standardized_outputs_are_reported_in_target_units(validate) -> None:
    # output 1.0 = one std above the mean: 50 + 10 = 60 in target units
    task = RegressionTask(ConstantOutput(1.0), standardize_targets=True, target_stats=(50.0, 10.0))
    target = torch.tensor([60.0, 64.0, 56.0, 60.0])
    batch = {"input": torch.zeros(4, 1), "target": target, "index": torch.arange(4)}
    metrics = validate(task, batch)
    assert metrics["val/mae"] == pytest.approx(2.0)
    assert metrics["val/rmse"] == pytest.approx(8**0.5)
    assert task.predict_step(batch, 0)["prediction"].tolist() == [60.0] * 4


def test_standardized_loss_is_computed_in_standard_units() -> None:
    task = RegressionTask(ConstantOutput(0.0), standardize_targets=True, target_stats=(50.0, 10.0))
    loss = task.compute_loss(torch.tensor([[1.0]]), torch.tensor([70.0]))  # target is +2 std
    assert loss.item() == pytest.approx(1.0)  # (1 - 2)^2


@pytest.mark.parametrize(("loss", "expected"), [("mse", 9.0), ("rmse", 3.0), ("huber", 2.5)])
def test_loss_choice_selects_the_formula(loss: str, expected: float) -> None:
    task = RegressionTask(ConstantOutput(0.0), loss=loss)
    value = task.compute_loss(torch.tensor([[0.0]]), torch.tensor([3.0]))
    assert value.item() == pytest.approx(expected)  # huber (delta 1): |3| - 0.5


def test_standardize_targets_without_target_stats_is_rejected(tiny_net) -> None:
    with pytest.raises(ValueError, match="target_stats"):
        RegressionTask(tiny_net(1), standardize_targets=True)


def test_one_row_validation_split_logs_nan_r2_instead_of_crashing(
    tiny_net, make_batch, fit
) -> None:
    """Issue 21 item 13: torchmetrics' R2Score raised "needs at least two samples"."""
    task = RegressionTask(tiny_net(1), optimizer=partial(torch.optim.SGD, lr=0.01))
    trainer = fit(task, make_batch(torch.randn(4)), val_batch=make_batch(torch.tensor([1.5])))
    assert math.isnan(trainer.callback_metrics["val/r2"])
    assert math.isfinite(trainer.callback_metrics["val/mae"])
