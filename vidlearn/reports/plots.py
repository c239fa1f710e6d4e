"""PNG plots of training runs and evaluations, drawn with matplotlib's Agg backend (no display).

Every function writes one PNG to `out` (parent folders created) and returns `out`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers and in workers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from vidlearn.reports.metrics import pr_curve, roc_curve  # noqa: E402

SPLIT_PREFIXES = ("train/", "val/", "test/")
SPLIT_COLOURS = {"train": "C0", "val": "C1", "test": "C2"}


def _save(figure: Figure, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def epoch_metrics(metrics_csv: Path) -> pd.DataFrame:
    """One row per epoch of a Lightning CSVLogger metrics.csv: the last value logged for each column.

    The logger writes train and validation values on separate rows with blanks elsewhere;
    per epoch, `last()` keeps each column's last non-blank value.
    """
    table = pd.read_csv(metrics_csv)
    if "epoch" not in table.columns:
        raise ValueError(
            f"{metrics_csv}: no 'epoch' column; expected a metrics.csv written by Lightning's CSVLogger."
        )
    return (
        table.dropna(subset=["epoch"])
        .groupby("epoch")
        .last()
        .drop(columns=["step"], errors="ignore")
    )


def split_best_checkpoint(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """Training epochs, and the best checkpoint's evaluation after training, if logged.

    vidlearn-train validates (and tests) the best checkpoint once fit ends; Lightning logs it
    under the epoch after the last, with no train/ values. That row is not an epoch of training.
    """
    train = [column for column in table.columns if column.startswith("train/")]
    if len(table) > 1 and train and table.iloc[-1][train].isna().all():
        return table.iloc[:-1], table.iloc[-1]
    return table, None


def training_curves(metrics_csv: Path) -> Figure:
    """One panel per metric (loss first), one line per split against the epoch (integer ticks),
    and the best checkpoint's after-training values as dashed horizontal lines."""
    epochs, best = split_best_checkpoint(epoch_metrics(metrics_csv))
    names: dict[str, list[str]] = {}
    for column in epochs.columns:
        prefix = next((p for p in SPLIT_PREFIXES if column.startswith(p)), None)
        name = column[len(prefix) :] if prefix else column
        if prefix and "/" not in name and not name.endswith("_step"):  # skip per-class recalls
            names.setdefault(name, []).append(column)
    if not names:
        raise ValueError(f"{metrics_csv}: no train/, val/ or test/ metrics to plot.")
    ordered = sorted(names, key=lambda n: (n != "loss", n))
    columns = min(3, len(ordered))
    rows = math.ceil(len(ordered) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for axis, name in zip(axes.flat, ordered, strict=False):
        for column in names[name]:
            _draw_split(axis, column, epochs[column].dropna(), best)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axis.legend(fontsize="small")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(ordered) :]:
        axis.set_visible(False)
    return figure


def _draw_split(axis: Axes, column: str, values: pd.Series, best: pd.Series | None) -> None:
    """One split's values per epoch, and its best-checkpoint value as a dashed line."""
    split = column.split("/")[0]
    color = SPLIT_COLOURS.get(split)
    if len(values):
        axis.plot(
            values.index, values.to_numpy(), marker="o", markersize=3, color=color, label=split
        )
    if best is not None and pd.notna(best.get(column)):
        axis.axhline(
            float(best[column]), linestyle="--", color=color, label=f"{split} (best checkpoint)"
        )


def plot_training_curves(metrics_csv: Path, out: Path) -> Path:
    """Write `training_curves(metrics_csv)` to `out`."""
    return _save(training_curves(metrics_csv), out)


def plot_confusion_matrix(
    matrix: np.ndarray | Sequence[Sequence[int]], classes: Sequence[str], out: Path
) -> Path:
    """Counts and row-normalised (recall) confusion matrices side by side; rows are true classes."""
    counts = np.asarray(matrix, dtype=np.int64)
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = 1.2 + 0.6 * len(classes)
    figure, axes = plt.subplots(1, 2, figsize=(2 * side + 2, side + 1))
    for axis, values, title, text in (
        (axes[0], counts, "counts", "{:d}"),
        (axes[1], normalised, "normalised by true class", "{:.2f}"),
    ):
        image = axis.imshow(
            values, cmap="Blues", vmin=0, vmax=max(values.max(), 1e-12) if title == "counts" else 1
        )
        figure.colorbar(image, ax=axis, fraction=0.046)
        axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        axis.set_yticks(range(len(classes)), classes)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(title)
        limit = values.max() / 2 if values.size else 0
        for (row, col), value in np.ndenumerate(values):
            axis.text(
                col,
                row,
                text.format(value),
                ha="center",
                va="center",
                color="white" if value > limit else "black",
                fontsize="small",
            )
    return _save(figure, out)


def plot_roc_pr(
    true: np.ndarray, score: np.ndarray, out: Path, auroc: float, average_precision: float
) -> Path:
    """ROC and precision-recall curves of a binary classifier; `score` is the positive probability."""
    figure, (roc_axis, pr_axis) = plt.subplots(1, 2, figsize=(9, 4))
    fpr, tpr = roc_curve(true, score)
    roc_axis.plot(fpr, tpr, label=f"AUROC {auroc:.3f}")
    roc_axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    roc_axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    recall, precision = pr_curve(true, score)
    pr_axis.step(recall, precision, where="post", label=f"AP {average_precision:.3f}")
    pr_axis.axhline(np.mean(true), linestyle="--", color="grey", linewidth=1)
    pr_axis.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for axis in (roc_axis, pr_axis):
        axis.legend(loc="lower right")
        axis.grid(alpha=0.3)
    return _save(figure, out)


def plot_regression_scatter(
    true: np.ndarray, predicted: np.ndarray, out: Path, r2: float, rmse: float
) -> Path:
    """Predicted against true values with the identity line; R2 and RMSE in the title."""
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(true, predicted, s=12, alpha=0.7)
    low, high = (
        float(np.min([true.min(), predicted.min()])),
        float(np.max([true.max(), predicted.max()])),
    )
    axis.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    axis.set(xlabel="true", ylabel="predicted", title=f"R2 {r2:.3f}, RMSE {rmse:.3g}")
    axis.grid(alpha=0.3)
    return _save(figure, out)


def plot_counts(counts: pd.DataFrame, out: Path, title: str) -> Path:
    """Grouped bars: one group per row (a class), one bar per column (a split or a tranche)."""
    figure, axis = plt.subplots(
        figsize=(max(5.0, 0.8 * len(counts) * max(1, len(counts.columns)) + 2), 4)
    )
    counts.plot.bar(ax=axis, rot=45)
    axis.set(title=title, ylabel="rows", xlabel=counts.index.name or "")
    axis.grid(alpha=0.3, axis="y")
    return _save(figure, out)
