"""Evaluation metrics from per-item targets and scores, computed directly with numpy.

Classification takes `true` (N,) int class indices and `scores` (N, K) class probabilities
(binary: K = 2, column 1 the positive class); regression takes `true` and `predicted` (N,).
Definitions follow scikit-learn (precision/recall of a class with no predictions/items is 0;
macro averages run over the classes present in the true or the predicted labels; average
precision is the step-wise area under the PR curve), and the training tasks use the same ones
(tests/reports/test_metric_properties.py checks them against scikit-learn). A value with no
definition on the data (AUROC with one class present, average precision without positives, R2 of
constant targets or a single row) is NaN, never a fallback number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from torch import Tensor


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts, rows the true class, columns the predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def per_class_table(matrix: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """precision, recall, f1 and support per class, then macro and support-weighted averages.

    The macro average runs over the classes that occur in the true or the predicted labels, as
    scikit-learn's: a class absent from both says nothing about the model.
    """
    hits = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    precision = hits / np.maximum(matrix.sum(axis=0), 1)
    recall = hits / np.maximum(support, 1)
    f1 = np.where(
        precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0
    )
    table = pd.DataFrame(
        {
            "class": list(classes),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
    )
    weights = support / max(support.sum(), 1)
    seen = (support + matrix.sum(axis=0)) > 0
    averages = pd.DataFrame(
        {
            "class": ["macro avg", "weighted avg"],
            "precision": [_mean(precision[seen]), (precision * weights).sum()],
            "recall": [_mean(recall[seen]), (recall * weights).sum()],
            "f1": [_mean(f1[seen]), (f1 * weights).sum()],
            "support": [support.sum()] * 2,
        }
    )
    return pd.concat([table, averages], ignore_index=True)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def roc_curve(true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0)."""
    tps, fps = _cumulative_counts(true, score)
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def pr_curve(true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct threshold, from recall 0 (precision 1)."""
    tps, fps = _cumulative_counts(true, score)
    return np.r_[0.0, tps / max(tps[-1], 1)], np.r_[1.0, tps / (tps + fps)]


def auroc(true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties as one threshold); NaN unless both classes are present."""
    true = np.asarray(true)
    if len(np.unique(true)) < 2:
        return float("nan")
    fpr, tpr = roc_curve(true, score)
    return float(np.trapezoid(tpr, fpr))


def average_precision(true: np.ndarray, score: np.ndarray) -> float:
    """Sum over thresholds of (recall step) * precision; NaN without positives (no recall)."""
    if not np.asarray(true).sum() > 0:
        return float("nan")
    recall, precision = pr_curve(true, score)
    return float(np.sum(np.diff(recall) * precision[1:]))


def r2_score(true: np.ndarray, predicted: np.ndarray) -> float:
    """1 - residual / total sum of squares; NaN for constant targets (one row included)."""
    true, predicted = np.asarray(true, dtype=float), np.asarray(predicted, dtype=float)
    if len(true) == 0 or np.ptp(true) == 0:
        return float("nan")
    total = ((true - true.mean()) ** 2).sum()
    return float(1 - ((true - predicted) ** 2).sum() / total)


def _cumulative_counts(true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-np.asarray(score), kind="stable")
    score, true = np.asarray(score)[order], np.asarray(true)[order].astype(float)
    last_of_threshold = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(true)[last_of_threshold]
    return tps, (last_of_threshold + 1) - tps


def classification_metrics(
    true: np.ndarray, scores: np.ndarray, classes: Sequence[str], threshold: float = 0.5
) -> dict[str, float]:
    """accuracy, balanced_accuracy, macro_f1, log_loss; binary adds auroc and average_precision."""
    true = np.asarray(true, dtype=np.int64)
    predicted = predict_classes(scores, threshold)
    matrix = confusion_matrix(true, predicted, len(classes))
    table = per_class_table(matrix, classes).set_index("class")
    present = table["support"].iloc[: len(classes)] > 0
    picked = np.clip(scores[np.arange(len(true)), true], 1e-7, 1.0)
    metrics = {
        "accuracy": float((predicted == true).mean()) if len(true) else float("nan"),
        "balanced_accuracy": _mean(table["recall"].iloc[: len(classes)][present].to_numpy()),
        "macro_f1": float(table["f1"].iloc[len(classes)]),  # the "macro avg" row
        "log_loss": float(-np.log(picked).mean()),
        "count": float(len(true)),
    }
    if len(classes) == 2:
        metrics["auroc"] = auroc(true, scores[:, 1])
        metrics["average_precision"] = average_precision(true, scores[:, 1])
    return metrics


def predict_classes(scores: np.ndarray | Tensor, threshold: float = 0.5) -> np.ndarray | Tensor:
    """Most probable class; for two classes, positive when its probability >= `threshold`.

    Scores (N, K) as a NumPy array or a tensor, class indices (N,) int64 of the same kind: the one
    rule of vidlearn-eval, vidlearn-predict and the binary task's `predict_step`.
    """
    predicted = scores[:, 1] >= threshold if scores.shape[1] == 2 else scores.argmax(1)
    return predicted.astype(np.int64) if isinstance(scores, np.ndarray) else predicted.long()


def regression_metrics(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """mae, rmse and r2 (1 - residual / total sum of squares)."""
    true, predicted = np.asarray(true, dtype=float), np.asarray(predicted, dtype=float)
    residual = true - predicted
    return {
        "mae": float(np.abs(residual).mean()),
        "rmse": float(np.sqrt((residual**2).mean())),
        "r2": r2_score(true, predicted),
        "count": float(len(true)),
    }
