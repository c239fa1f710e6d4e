"""Two-class classification from one logit with BCEWithLogits; `classes[1]` is the positive class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryConfusionMatrix,
    BinaryF1Score,
)

from vidlearn.errors import ConfigError
from vidlearn.reports.metrics import predict_classes
from vidlearn.tasks.base import ClassificationTask
from vidlearn.tasks.split_metrics import binary_auroc, binary_average_precision


class BinaryLogLoss(Metric):
    """Mean binary cross-entropy of probabilities (B,) against 0/1 targets (B,) over all items.

    Unlike the training loss it ignores `pos_weight`, so it compares across runs and recipes.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, probabilities: Tensor, target: Tensor) -> None:
        # clamp so that a confident wrong prediction costs log(1e7) rather than infinity
        clamped = probabilities.double().clamp(1e-7, 1 - 1e-7)
        self.total += F.binary_cross_entropy(clamped, target.double(), reduction="sum")
        self.count += target.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


class BinaryTask(ClassificationTask):
    """BCEWithLogits on a (B, 1) model output; targets are float32 0/1 (B,).

    Logs loss, accuracy, balanced_accuracy, f1, auroc, average_precision, log_loss and
    recall/<class> (specificity and sensitivity) per split. `threshold` turns probabilities
    into predicted labels for accuracy, f1, recalls and `predict`. `pos_weight` multiplies the
    loss of positive items, e.g. negatives / positives for a rare positive class.
    `label_smoothing` eps trains on targets y (1 - eps) + eps / 2, as multiclass does with two
    classes; the metrics keep the 0/1 targets. The loss also takes mixed (`mix`) float targets.
    `options` are `Task`'s shared keyword arguments (optimizer, scheduler, backbone_lr_scale, ...).
    """

    label_kind = "binary"
    default_monitor = ("val/auroc", "max")

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        *,
        pos_weight: float | None = None,
        threshold: float = 0.5,
        label_smoothing: float = 0.0,
        **options: Any,
    ) -> None:
        if len(classes) != 2:
            raise ConfigError(
                f"a binary task needs exactly 2 classes [negative, positive]; got {list(classes)}."
            )
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"task.threshold={threshold} must be strictly between 0 and 1.")
        if pos_weight is not None and pos_weight <= 0:
            raise ConfigError(f"task.pos_weight={pos_weight} must be > 0 (or null for 1).")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"task.label_smoothing={label_smoothing} must be in [0, 1).")
        super().__init__(model, classes, **options)
        weight = None if pos_weight is None else torch.tensor([float(pos_weight)])
        self.criterion = nn.BCEWithLogitsLoss(pos_weight=weight)
        self.confusion: dict[str, Tensor] = {}

    @property
    def num_outputs(self) -> int:
        return 1

    def build_metrics(self) -> MetricCollection:
        # torchmetrics counts p > threshold as positive, predict and eval p >= threshold; the
        # float32 number just below the threshold makes the two agree at p == threshold.
        threshold = float(np.nextafter(np.float32(self.hparams.threshold), np.float32(0)))
        return MetricCollection(
            {
                "accuracy": BinaryAccuracy(threshold),
                "f1": BinaryF1Score(threshold),
                "auroc": binary_auroc(),  # NaN with one class present
                "average_precision": binary_average_precision(),  # NaN without positives
                "log_loss": BinaryLogLoss(),
                "confusion": BinaryConfusionMatrix(threshold),
            }
        )

    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        smoothing = self.hparams.label_smoothing
        return self.criterion(logits.squeeze(-1), target.float() * (1 - smoothing) + smoothing / 2)

    def soft_targets(self, target: Tensor) -> Tensor:
        return target.float()  # (B,) 0/1

    def hard_targets(self, soft: Tensor) -> Tensor:
        return (soft >= 0.5).float()  # (B,) 0/1: the label with the larger weight

    def metric_inputs(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        # probabilities, not logits: torchmetrics would take logits that happen to lie in [0, 1]
        # for probabilities
        return logits.squeeze(-1).sigmoid(), target.long()  # (B,), (B,)

    def predictions(self, logits: Tensor) -> dict[str, Tensor]:
        """`probability` (B,) of the positive class and `prediction` (B,) int64 0/1."""
        probability = logits.squeeze(-1).sigmoid()  # (B,)
        return {
            "probability": probability,
            "prediction": predict_classes(
                torch.stack([1 - probability, probability], dim=-1), self.hparams.threshold
            ),
        }
