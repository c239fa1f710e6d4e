"""The tasks' split metrics equal scikit-learn's on generated predictions.

Each case updates a task's validation metrics directly with logits and targets (no Trainer), then
reads what `_log_epoch` would log: `summarize(compute())`. Undefined values (AUROC with one class
present, average precision without positives, R2 of constant targets or one row) are NaN.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as sk
from torch import Tensor, nn

from vidlearn.tasks.base import Task
from vidlearn.tasks.binary import BinaryTask
from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.regression import RegressionTask

# Logits on a coarse grid, so ties between items are common.
LOGIT = st.integers(-2, 2).map(float)


def _split_values(task: Task, logits: Tensor, target: Tensor) -> dict[str, float]:
    task.val_metrics.update(*task.metric_inputs(logits, target))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = task.summarize("val", task.val_metrics.compute())
    task.val_metrics.reset()
    return {name.removeprefix("val/"): float(value) for name, value in values.items()}


def _sklearn(function, *args, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(function(*args, **kwargs))


@given(st.data())
def test_multiclass_metrics_equal_sklearn(data: st.DataObject) -> None:
    """accuracy, balanced accuracy and macro F1 as scikit-learn, with absent classes.

    Caught the planted bug: MulticlassF1Score(average="weighted") in place of "macro".
    """
    num_classes = data.draw(st.integers(2, 5))
    size = data.draw(st.integers(1, 10))
    target = np.array(
        data.draw(st.lists(st.integers(0, num_classes - 1), min_size=size, max_size=size))
    )
    logits = torch.tensor(
        data.draw(
            st.lists(
                st.lists(LOGIT, min_size=num_classes, max_size=num_classes),
                min_size=size,
                max_size=size,
            )
        )
    )
    task = MulticlassTask(nn.Identity(), classes=[f"c{i}" for i in range(num_classes)])
    values = _split_values(task, logits, torch.tensor(target))
    # torchmetrics breaks argmax ties towards the lowest index, as numpy does
    predicted = logits.argmax(dim=-1).numpy()
    assert values["accuracy"] == pytest.approx(_sklearn(sk.accuracy_score, target, predicted))
    assert values["balanced_accuracy"] == pytest.approx(
        _sklearn(sk.balanced_accuracy_score, target, predicted)
    )
    assert values["f1"] == pytest.approx(_sklearn(sk.f1_score, target, predicted, average="macro"))


@given(st.data())
def test_binary_metrics_equal_sklearn(data: st.DataObject) -> None:
    """accuracy, balanced accuracy, F1, AUROC and average precision as scikit-learn, with ties
    and one class present; AUROC (and AP without positives) NaN where undefined.

    Caught the code before issue 21: torchmetrics' BinaryAUROC returned 0 for one class present,
    and its thresholded metrics counted p == threshold as negative while predict and eval
    count it positive.
    """
    size = data.draw(st.integers(1, 10))
    target = np.array(data.draw(st.lists(st.integers(0, 1), min_size=size, max_size=size)))
    logits = torch.tensor(data.draw(st.lists(LOGIT, min_size=size, max_size=size)))[:, None]
    task = BinaryTask(nn.Identity(), classes=["neg", "pos"])
    values = _split_values(task, logits, torch.tensor(target, dtype=torch.float32))
    score = logits.squeeze(-1).sigmoid().numpy()
    predicted = (score >= 0.5).astype(int)
    assert values["accuracy"] == pytest.approx(_sklearn(sk.accuracy_score, target, predicted))
    assert values["balanced_accuracy"] == pytest.approx(
        _sklearn(sk.balanced_accuracy_score, target, predicted)
    )
    assert values["f1"] == pytest.approx(_sklearn(sk.f1_score, target, predicted, zero_division=0))
    if len(set(target.tolist())) < 2:
        assert math.isnan(values["auroc"])
    else:
        assert values["auroc"] == pytest.approx(_sklearn(sk.roc_auc_score, target, score))
    if target.sum() == 0:
        assert math.isnan(values["average_precision"])
    else:
        assert values["average_precision"] == pytest.approx(
            _sklearn(sk.average_precision_score, target, score)
        )


@given(
    st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)), min_size=1, max_size=10).map(
        lambda pairs: np.array(pairs, dtype=np.float32).T / 4
    )
)
def test_regression_metrics_equal_sklearn(pairs: np.ndarray) -> None:
    """MAE, RMSE and R2 as scikit-learn; R2 NaN for constant targets, one row included.

    Caught the code before issue 21: torchmetrics' R2Score raised on one row.
    """
    target, predicted = pairs
    task = RegressionTask(nn.Identity())
    values = _split_values(task, torch.tensor(predicted)[:, None], torch.tensor(target))
    assert values["mae"] == pytest.approx(sk.mean_absolute_error(target, predicted), abs=1e-5)
    assert values["rmse"] == pytest.approx(
        math.sqrt(sk.mean_squared_error(target, predicted)), abs=1e-5
    )
    if np.ptp(target) == 0:
        assert math.isnan(values["r2"])
    else:
        assert values["r2"] == pytest.approx(_sklearn(sk.r2_score, target, predicted), abs=1e-5)
