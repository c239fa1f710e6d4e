"""Split metrics computed exactly, with eval's definitions, from every item of the split.

torchmetrics' BinaryAUROC returns 0 when one class is present and its R2Score raises on one row,
so a one-class or one-row validation split either crashed the run or fed a fake 0 to checkpoint
selection. These metrics keep the split's scores and targets and call the functions of
`vidlearn.reports.metrics` (so training and vidlearn-eval share one definition); a value with no
definition on the split is NaN, which ModelCheckpoint never prefers to a finite value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from vidlearn.reports.metrics import auroc, average_precision, r2_score

# (targets (N,), scores or predictions (N,)) -> value, NaN where undefined
ScoreFunction = Callable[[np.ndarray, np.ndarray], float]


class ExactSplitMetric(Metric):
    """`function` of all (scores (N,), targets (N,)) pairs of the split, in float64.

    `undefined_because` says in words when the value is NaN; the task logs it once.
    """

    full_state_update = False

    def __init__(self, function: ScoreFunction, undefined_because: str) -> None:
        super().__init__()
        self.function = function
        self.undefined_because = undefined_because
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        self.scores.append(scores.detach().double())
        self.targets.append(targets.detach().double())

    def compute(self) -> Tensor:
        if not self.targets:
            return torch.tensor(float("nan"))
        targets = dim_zero_cat(self.targets).cpu().numpy()
        scores = dim_zero_cat(self.scores).cpu().numpy()
        return torch.tensor(self.function(targets, scores), dtype=torch.float32)


def binary_auroc() -> ExactSplitMetric:
    """Area under the ROC curve of positive-class probabilities against 0/1 targets."""
    return ExactSplitMetric(auroc, "AUROC needs both classes in the split")


def binary_average_precision() -> ExactSplitMetric:
    """Average precision of positive-class probabilities against 0/1 targets."""
    return ExactSplitMetric(average_precision, "average precision needs a positive in the split")


def r2() -> ExactSplitMetric:
    """Coefficient of determination of predictions against float targets."""
    return ExactSplitMetric(r2_score, "R2 needs at least two different targets in the split")
