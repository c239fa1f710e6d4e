"""Metrics agree with hand-computed values (scikit-learn's definitions)."""

import numpy as np
import pytest

from vidlearn.reports.metrics import (
    classification_metrics,
    confusion_matrix,
    per_class_table,
    regression_metrics,
)


def test_per_class_precision_recall_f1_and_support() -> None:
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    matrix = confusion_matrix(true, predicted, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    table = per_class_table(matrix, ["a", "b", "c"]).set_index("class")
    assert table.loc["a", "precision"] == 1.0 and table.loc["a", "recall"] == pytest.approx(2 / 3)
    assert table.loc["b", "f1"] == pytest.approx(0.5)
    assert table.loc["c", "support"] == 1 and table.loc["weighted avg", "support"] == 6
    assert table.loc["macro avg", "recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_binary_auroc_and_average_precision() -> None:
    true = np.array([0, 0, 1, 1])
    positive = np.array([0.1, 0.4, 0.35, 0.8])
    metrics = classification_metrics(
        true, np.stack([1 - positive, positive], axis=1), ["neg", "pos"]
    )
    assert metrics["auroc"] == pytest.approx(0.75)
    assert metrics["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["accuracy"] == pytest.approx(0.75)  # only 0.8 reaches the 0.5 threshold


def test_regression_r2_and_rmse() -> None:
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert metrics["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert metrics["r2"] == pytest.approx(1 - 1 / 2)
