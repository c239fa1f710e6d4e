"""Eval's metrics (vidlearn.reports.metrics) equal scikit-learn's on generated predictions.

Undefined values (AUROC with one class present, average precision without positives, R2 of
constant targets or one row) are NaN rather than a fallback number.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as sk

from vidlearn.reports.metrics import (
    classification_metrics,
    confusion_matrix,
    per_class_table,
    regression_metrics,
)

# Scores on a coarse grid, so ties between items are common.
SCORE = st.integers(0, 4).map(lambda step: step / 4)


@st.composite
def multiclass_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """(true (N,), predicted (N,), K) with K >= 2 classes, some of them possibly absent."""
    num_classes = draw(st.integers(2, 5))
    size = draw(st.integers(1, 12))
    labels = st.lists(st.integers(0, num_classes - 1), min_size=size, max_size=size)
    return np.array(draw(labels)), np.array(draw(labels)), num_classes


@st.composite
def binary_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(true (N,) 0/1, positive-class score (N,)), one class present in some cases."""
    size = draw(st.integers(1, 12))
    true = draw(st.lists(st.integers(0, 1), min_size=size, max_size=size))
    scores = draw(st.lists(SCORE, min_size=size, max_size=size))
    return np.array(true), np.array(scores)


def _sklearn(function, *args, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(function(*args, **kwargs))


def _one_hot_scores(predicted: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes)[predicted]  # (N, K): the predicted class has probability 1


@given(multiclass_cases())
def test_multiclass_metrics_equal_sklearn(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    """accuracy, balanced accuracy and macro F1 as scikit-learn computes them.

    Caught the planted bug: macro F1 averaged over every class, absent ones included (issue 21
    item 4: a perfect prediction with a class missing scored 0.667).
    """
    true, predicted, num_classes = case
    classes = [f"c{i}" for i in range(num_classes)]
    metrics = classification_metrics(true, _one_hot_scores(predicted, num_classes), classes)
    assert metrics["accuracy"] == pytest.approx(_sklearn(sk.accuracy_score, true, predicted))
    assert metrics["balanced_accuracy"] == pytest.approx(
        _sklearn(sk.balanced_accuracy_score, true, predicted)
    )
    assert metrics["macro_f1"] == pytest.approx(
        _sklearn(sk.f1_score, true, predicted, average="macro")
    )


@given(multiclass_cases())
def test_per_class_table_averages_equal_sklearn(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    """The "macro avg" and "weighted avg" rows equal scikit-learn's precision, recall and F1.

    Caught the planted bug: the macro row averaged over classes absent from the split.
    """
    true, predicted, num_classes = case
    table = per_class_table(
        confusion_matrix(true, predicted, num_classes), [f"c{i}" for i in range(num_classes)]
    ).set_index("class")
    for average in ("macro", "weighted"):
        row = table.loc[f"{average} avg"]
        for name, function in (
            ("precision", sk.precision_score),
            ("recall", sk.recall_score),
            ("f1", sk.f1_score),
        ):
            expected = _sklearn(function, true, predicted, average=average, zero_division=0)
            assert row[name] == pytest.approx(expected), (average, name)


@given(binary_cases())
def test_binary_auroc_and_average_precision_equal_sklearn(
    case: tuple[np.ndarray, np.ndarray],
) -> None:
    """AUROC and average precision as scikit-learn, ties included; NaN where undefined.

    Caught: the code before issue 21 (no auroc key with one class present), and a planted bug
    that counted ties per item instead of per threshold.
    """
    true, score = case
    metrics = classification_metrics(true, np.stack([1 - score, score], axis=1), ["neg", "pos"])
    if len(set(true.tolist())) < 2:
        assert math.isnan(metrics["auroc"])
    else:
        assert metrics["auroc"] == pytest.approx(_sklearn(sk.roc_auc_score, true, score))
    if true.sum() == 0:
        assert math.isnan(metrics["average_precision"])
    else:
        assert metrics["average_precision"] == pytest.approx(
            _sklearn(sk.average_precision_score, true, score)
        )


@given(
    st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)), min_size=1, max_size=12).map(
        lambda pairs: np.array(pairs, dtype=float).T / 4
    )
)
def test_regression_metrics_equal_sklearn(pairs: np.ndarray) -> None:
    """MAE, RMSE and R2 as scikit-learn; R2 is NaN for constant targets (one row included).

    Caught the planted bug: the constant-target guard removed (R2 then -inf or NaN with a
    warning instead of a deliberate NaN).
    """
    true, predicted = pairs
    metrics = regression_metrics(true, predicted)
    assert metrics["mae"] == pytest.approx(sk.mean_absolute_error(true, predicted))
    assert metrics["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(true, predicted)))
    if np.ptp(true) == 0:
        assert math.isnan(metrics["r2"])
    else:
        assert metrics["r2"] == pytest.approx(_sklearn(sk.r2_score, true, predicted))


def test_macro_f1_of_a_perfect_prediction_with_a_class_missing_is_one() -> None:
    """Issue 21 item 4: three classes, the third absent from the split, every item right."""
    true = np.array([0, 1, 0, 1])
    metrics = classification_metrics(true, _one_hot_scores(true, 3), ["a", "b", "c"])
    assert metrics["macro_f1"] == 1.0
