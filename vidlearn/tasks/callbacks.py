"""Task-side Lightning callbacks: late backbone unfreezing, stopping on a stuck-at-zero metric,
and checking that the monitored metric is logged."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from torch import nn

from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)


class BackboneUnfreeze(pl.Callback):
    """Train only the layers after `model.backbone` for the first `unfreeze_at_epoch` epochs.

    While frozen, the backbone gets no gradients and stays in eval mode, so its BatchNorm
    running statistics keep their pretrained values. The task's optimiser already holds the
    backbone parameters (see `vidlearn.tasks.optim.parameter_groups`), at `backbone_lr_scale`
    times the base rate (times the layer decay, if set) once they train. Models with a `freeze_backbone` flag (FrameGRU) have
    it kept in step, because their `train()` reads it.
    """

    def __init__(self, unfreeze_at_epoch: int) -> None:
        if unfreeze_at_epoch < 0:
            raise ConfigError(
                f"BackboneUnfreeze.unfreeze_at_epoch={unfreeze_at_epoch} must be >= 0."
            )
        self.unfreeze_at_epoch = unfreeze_at_epoch

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not isinstance(getattr(pl_module.model, "backbone", None), nn.Module):
            raise ConfigError(
                f"BackboneUnfreeze needs a model with a `backbone` submodule, and "
                f"{type(pl_module.model).__name__} has none; remove the callback."
            )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        model = pl_module.model
        frozen = trainer.current_epoch < self.unfreeze_at_epoch
        if hasattr(model, "freeze_backbone"):
            model.freeze_backbone = frozen
        model.backbone.requires_grad_(not frozen)
        model.backbone.train(not frozen)
        if trainer.current_epoch == self.unfreeze_at_epoch:
            logger.info("epoch %d: backbone unfrozen", trainer.current_epoch)


class ZeroMetricStop(pl.Callback):
    """Stop training once `monitor` has been exactly 0 for `patience` validations in a row.

    A binary run whose model predicts only the negative class has F1 = 0 and seldom recovers;
    the cardiac recipe stops such runs after 10 epochs instead of spending the whole budget.
    """

    def __init__(self, monitor: str = "val/f1", patience: int = 10) -> None:
        if patience < 1:
            raise ConfigError(f"ZeroMetricStop.patience={patience} must be >= 1.")
        self.monitor = monitor
        self.patience = patience
        self.zero_count = 0

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise KeyError(
                f"ZeroMetricStop monitors {self.monitor!r}, which was not logged; logged metrics "
                f"are {sorted(trainer.callback_metrics)}. Set its monitor to one of them."
            )
        self.zero_count = self.zero_count + 1 if float(value) == 0.0 else 0
        should_stop = trainer.strategy.reduce_boolean_decision(
            self.zero_count >= self.patience, all=False
        )
        if should_stop:
            logger.warning(
                "stopping: %s has been 0 for %d validations in a row",
                self.monitor,
                self.zero_count,
            )
            trainer.should_stop = True

    def state_dict(self) -> dict[str, int]:
        return {"zero_count": self.zero_count}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.zero_count = state_dict["zero_count"]


class MonitorCheck(pl.Callback):
    """Stop at the first validation with a ConfigError when `monitor` was not logged.

    Listed before the checkpoint and early-stopping callbacks, which would otherwise fail on a
    misspelt `monitor` with a RuntimeError that names no config key.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor in trainer.callback_metrics:
            return
        logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
        raise ConfigError(
            f"monitor={self.monitor} is not a metric this run logs by validation time; "
            f"logged: {logged}. Set monitor= one of them (or null for the task's own)."
        )
