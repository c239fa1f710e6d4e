"""Scalar regression from one model output, with optional target standardisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from vidlearn.errors import ConfigError
from vidlearn.tasks.base import Task
from vidlearn.tasks.split_metrics import r2

LOSSES = ("mse", "huber", "rmse")


class RegressionTask(Task):
    """Regress float32 targets (B,) from a (B, 1) model output with MSE, Huber or RMSE loss.

    With `standardize_targets`, the model learns `(target - mean) / std`, where
    `target_stats = (mean, std)` of the training targets is passed in by the CLI; the loss is
    in those standardised units, while mae, rmse, r2 and predictions are in the targets' own.
    `options` are `Task`'s shared keyword arguments (classes, optimizer, scheduler, ...).
    """

    label_kind = "regression"
    default_monitor = ("val/r2", "max")

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str = "mse",
        standardize_targets: bool = False,
        target_stats: Sequence[float] | None = None,
        **options: Any,
    ) -> None:
        if loss not in LOSSES:
            raise ConfigError(f"task.loss={loss!r} is not one of {', '.join(LOSSES)}.")
        if standardize_targets and (target_stats is None or len(target_stats) != 2):
            raise ConfigError(
                "task.standardize_targets=true needs target_stats=(mean, std) of the training "
                f"targets; got {target_stats!r}. Pass them, or set task.standardize_targets=false."
            )
        if standardize_targets and not target_stats[1] > 0:
            raise ConfigError(
                f"the training targets have std {target_stats[1]}; standardising needs std > 0 "
                "(are all targets equal?). Set task.standardize_targets=false."
            )
        super().__init__(model, **options)
        mean, std = target_stats if standardize_targets else (0.0, 1.0)
        self.target_mean = float(mean)
        self.target_std = float(std)

    @property
    def num_outputs(self) -> int:
        return 1

    def build_metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "mae": MeanAbsoluteError(),
                "rmse": MeanSquaredError(squared=False),
                "r2": r2(),  # NaN for one row or constant targets
            }
        )

    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        standardized = (target.float() - self.target_mean) / self.target_std  # (B,)
        outputs = logits.squeeze(-1)  # (B,)
        if self.hparams.loss == "huber":
            return F.huber_loss(outputs, standardized)
        mse = F.mse_loss(outputs, standardized)
        # the epsilon keeps the gradient of sqrt finite when the fit is exact
        return torch.sqrt(mse + 1e-12) if self.hparams.loss == "rmse" else mse

    def metric_inputs(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return self._values(logits), target.float()  # (B,), (B,)

    def predictions(self, logits: Tensor) -> dict[str, Tensor]:
        """`prediction` (B,) float in the targets' units."""
        return {"prediction": self._values(logits)}

    def _values(self, logits: Tensor) -> Tensor:
        return logits.squeeze(-1) * self.target_std + self.target_mean  # (B,)
