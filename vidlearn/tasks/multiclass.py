"""Single-label classification into K classes with cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from vidlearn.errors import ConfigError
from vidlearn.tasks.base import ClassificationTask


class MulticlassTask(ClassificationTask):
    """Cross-entropy over `len(classes)` logits; targets are int64 class indices (B,).

    Logs loss, accuracy, balanced_accuracy, f1 (macro) and recall/<class> per split.
    `class_weights` (one per class, in `classes` order) weight the loss, e.g. inverse class
    frequencies; `label_smoothing` as in torch's CrossEntropyLoss. The loss also takes mixed
    (`mix`) targets, rows of class probabilities (B, K). `options` are `Task`'s shared keyword
    arguments (optimizer, scheduler, backbone_lr_scale, ...).
    """

    label_kind = "multiclass"
    default_monitor = ("val/balanced_accuracy", "max")

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        *,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        **options: Any,
    ) -> None:
        if len(classes) < 2:
            raise ConfigError(f"a multiclass task needs at least 2 classes; got {list(classes)}.")
        if class_weights is not None and (
            len(class_weights) != len(classes) or min(class_weights) <= 0
        ):
            raise ConfigError(
                f"task.class_weights needs one positive weight per class ({len(classes)}: "
                f"{list(classes)}); got {list(class_weights)}."
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"task.label_smoothing={label_smoothing} must be in [0, 1).")
        super().__init__(model, classes, **options)
        weight = None if class_weights is None else torch.tensor(list(class_weights)).float()
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self.confusion: dict[str, Tensor] = {}

    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    def build_metrics(self) -> MetricCollection:
        num_classes = len(self.classes)
        return MetricCollection(
            {
                "accuracy": MulticlassAccuracy(num_classes, average="micro"),
                "f1": MulticlassF1Score(num_classes, average="macro"),
                "confusion": MulticlassConfusionMatrix(num_classes),
            }
        )

    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy against labels (B,) or mixed rows of class probabilities (B, K).

        With class weights torch divides the loss of labels by the items' total weight but that
        of rows by the batch size; rows are divided by their total weight here too, so a row
        left unmixed costs what its label does.
        """
        if target.dim() == 1 or self.criterion.weight is None:
            return self.criterion(logits, target)
        total = F.cross_entropy(
            logits,
            target,
            weight=self.criterion.weight,
            label_smoothing=self.criterion.label_smoothing,
            reduction="sum",
        )
        return total / (target @ self.criterion.weight).sum()  # (B, K) @ (K,): items' weights

    def soft_targets(self, target: Tensor) -> Tensor:
        return F.one_hot(target, len(self.classes)).float()  # (B, K)

    def hard_targets(self, soft: Tensor) -> Tensor:
        return soft.argmax(dim=-1)  # (B,) int64: the class with the largest weight

    def metric_inputs(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return logits.softmax(dim=-1), target  # (B, K), (B,)

    def predictions(self, logits: Tensor) -> dict[str, Tensor]:
        """`probabilities` (B, K) float and `prediction` (B,) int64, the most probable class."""
        probabilities = logits.softmax(dim=-1)  # (B, K)
        return {"probabilities": probabilities, "prediction": probabilities.argmax(dim=-1)}
