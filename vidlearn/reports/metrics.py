"""Evaluation metrics from per-item targets and scores, computed directly with numpy.

Classification takes `true` (N,) int class indices and `scores` (N, K) class probabilities
(binary: K = 2, column 1 the positive class); regression takes `true` and `predicted` (N,).
Definitions follow scikit-learn (precision/recall of a class with no predictions/items is 0;
average precision is the step-wise area under the PR curve).
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
    """precision, recall, f1 and support per class, then macro and support-weighted averages."""
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
    averages = pd.DataFrame(
        {
            "class": ["macro avg", "weighted avg"],
            "precision": [precision.mean(), (precision * weights).sum()],
            "recall": [recall.mean(), (recall * weights).sum()],
            "f1": [f1.mean(), (f1 * weights).sum()],
            "support": [support.sum()] * 2,
        }
    )
    return pd.concat([table, averages], ignore_index=True)


def roc_curve(true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0)."""
    tps, fps = _cumulative_counts(true, score)
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def pr_curve(true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct threshold, from recall 0 (precision 1)."""
    tps, fps = _cumulative_counts(true, score)
    return np.r_[0.0, tps / max(tps[-1], 1)], np.r_[1.0, tps / (tps + fps)]


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
    table = per_class_table(matrix, classes).iloc[: len(classes)]
    present = table["support"] > 0
    picked = np.clip(scores[np.arange(len(true)), true], 1e-7, 1.0)
    metrics = {
        "accuracy": float((predicted == true).mean()) if len(true) else float("nan"),
        "balanced_accuracy": float(table.loc[present, "recall"].mean()),
        "macro_f1": float(table["f1"].mean()),
        "log_loss": float(-np.log(picked).mean()),
        "count": float(len(true)),
    }
    if len(classes) == 2 and present.all():
        fpr, tpr = roc_curve(true, scores[:, 1])
        recall, precision = pr_curve(true, scores[:, 1])
        metrics["auroc"] = float(np.trapezoid(tpr, fpr))
        metrics["average_precision"] = float(np.sum(np.diff(recall) * precision[1:]))
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
    total = ((true - true.mean()) ** 2).sum()
    return {
        "mae": float(np.abs(residual).mean()),
        "rmse": float(np.sqrt((residual**2).mean())),
        "r2": float(1 - (residual**2).sum() / total) if total > 0 else float("nan"),
        "count": float(len(true)),
    }
