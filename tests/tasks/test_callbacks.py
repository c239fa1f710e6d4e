"""BackboneUnfreeze and ZeroMetricStop inside real (tiny) Trainer runs."""

from __future__ import annotations

from functools import partial

import pytest
import pytorch_lightning as pl
import torch

from vidlearn.tasks.callbacks import BackboneUnfreeze, ZeroMetricStop
from vidlearn.tasks.multiclass import MulticlassTask

ADAM = partial(torch.optim.Adam, lr=0.02)
CLASSES = ["a", "b", "c"]


def _fit_with_unfreeze(tiny_net, make_batch, fit, max_epochs: int) -> tuple[MulticlassTask, dict]:
    task = MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAM)
    before = {name: p.detach().clone() for name, p in task.model.named_parameters()}
    batch = make_batch(torch.tensor([0, 1, 2, 0]))
    fit(task, batch, repeats=2, max_epochs=max_epochs, callbacks=[BackboneUnfreeze(2)])
    return task, before


def test_backbone_stays_fixed_before_the_unfreeze_epoch(tiny_net, make_batch, fit) -> None:
    task, before = _fit_with_unfreeze(tiny_net, make_batch, fit, max_epochs=2)
    weights = dict(task.model.named_parameters())
    assert torch.equal(weights["backbone.1.weight"], before["backbone.1.weight"])
    assert not torch.equal(weights["head.weight"], before["head.weight"])


def test_backbone_trains_from_the_unfreeze_epoch_on(tiny_net, make_batch, fit) -> None:
    task, before = _fit_with_unfreeze(tiny_net, make_batch, fit, max_epochs=3)
    weights = dict(task.model.named_parameters())
    assert not torch.equal(weights["backbone.1.weight"], before["backbone.1.weight"])


class LogsValues(pl.LightningModule):
    """Logs `values[epoch]` as val/f1 at each validation; trains one parameter on nothing."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: torch.Tensor, batch_index: int) -> torch.Tensor:
        return (self.weight * batch).sum()

    def validation_step(self, batch: torch.Tensor, batch_index: int) -> None:
        self.log("val/f1", self.values[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _epochs_run(values: list[float], callback: pl.Callback, tmp_path) -> int:
    trainer = pl.Trainer(
        max_epochs=len(values),
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    data = torch.utils.data.DataLoader(torch.ones(1, 1), batch_size=None)
    trainer.fit(LogsValues(values), data, data)
    return trainer.current_epoch


def test_zero_metric_stop_stops_after_patience_zero_epochs(tmp_path) -> None:
    assert _epochs_run([0.0] * 10, ZeroMetricStop("val/f1", patience=3), tmp_path) == 3


def test_zero_metric_stop_restarts_its_count_after_a_nonzero_value(tmp_path) -> None:
    values = [0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert _epochs_run(values, ZeroMetricStop("val/f1", patience=3), tmp_path) == 6


def test_zero_metric_stop_names_the_logged_metrics_when_its_monitor_is_missing(tmp_path) -> None:
    with pytest.raises(KeyError, match="val/f1"):
        _epochs_run([0.0] * 2, ZeroMetricStop("val/auroc", patience=3), tmp_path)
