"""Evaluate a loaded model on labelled files: single-view, multi-view and per-view metrics.

Each video's prediction is the mean of its views' scores (multi-view testing, level "video";
"image" for images, whose views are crops); the single view, the centre clip's centre crop, is
scored beside it (level "single_view"), from the views already decoded where it is one of them;
each view is also scored on its own against the video's label (level "clip", videos only).
`write_evaluation` writes metrics.json, per-item CSVs, the per-class table and the plots.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vidlearn.data.frame_cache import FrameCache
from vidlearn.errors import UserError
from vidlearn.inference.checkpoint import LoadedModel
from vidlearn.inference.eval_rows import run_directory
from vidlearn.inference.predictor import Predictions, predict_files
from vidlearn.inference.views import Views
from vidlearn.reports import metrics as M
from vidlearn.reports.plots import plot_confusion_matrix, plot_regression_scatter, plot_roc_pr
from vidlearn.reports.tables import markdown_table


@dataclass
class LevelResult:
    """Metrics at one level ("video" or "image": the views averaged; "single_view"; "clip":
    each view alone) and the per-item rows they came from."""

    metrics: dict[str, float]
    items: pd.DataFrame  # path, target, predicted, [correct], score columns
    confusion: np.ndarray | None = None
    per_class: pd.DataFrame | None = None


@dataclass
class Evaluation:
    """The metrics of one evaluation, by level, with the files that could not be read (path ->
    reason) and the number of views averaged per file (`view_counts`)."""

    label_kind: str
    classes: list[str]
    levels: dict[str, LevelResult]
    unreadable: dict[str, str] = field(default_factory=dict)
    views: dict[str, object] = field(default_factory=dict)  # see `view_counts`

    def metrics(self) -> dict[str, dict[str, float]]:
        """`{level: {metric: value}}`, as metrics.json holds them."""
        return {level: result.metrics for level, result in self.levels.items()}

    def side_by_side(self) -> dict[str, object]:
        """The view counts, the single view's metrics and the views averaged (summary.json)."""
        multi = "image" if "image" in self.levels else "video"
        single = self.levels.get("single_view", self.levels[multi])
        return {
            "views": self.views,
            "single_view": single.metrics,
            "multi_view": self.levels[multi].metrics,
        }


def evaluate(
    loaded: LoadedModel,
    paths: Sequence[str],
    targets: Sequence[float],
    views: Views | None = None,
    batch_size: int = 16,
    progress: bool = True,
    frame_cache: FrameCache | None = None,
) -> Evaluation:
    """Score `paths` and compare with `targets` (class indices, 0/1, or values)."""
    predictions = predict_files(
        loaded, paths, views, batch_size, progress, frame_cache, single_view=True
    )
    return evaluate_predictions(loaded, predictions, np.asarray(targets, dtype=float))


def evaluate_predictions(
    loaded: LoadedModel, predictions: Predictions, targets: np.ndarray
) -> Evaluation:
    """Metrics of already computed `predictions` against `targets` (one per file); the
    single-view level when `predictions` mark single views (`predict_files(single_view=True)`)."""
    files = predictions.files.assign(target=targets)
    unreadable = dict(
        zip(
            files.loc[files["error"] != "", "path"],
            files.loc[files["error"] != "", "error"],
            strict=True,
        )
    )
    files = files[files["error"] == ""].drop(columns=["error"])
    if files.empty:
        first = next(iter(unreadable.items()), ("", "no files"))
        raise UserError(
            f"none of the {len(unreadable)} file(s) to evaluate could be read (first: "
            f"{first[1]}); fix or remove them, or try data.backend=pyav."
        )
    windows = predictions.windows.assign(target=targets[predictions.windows["file"].to_numpy()])
    names = predictions.score_names
    levels = {"image" if loaded.modality == "image" else "video": _level(loaded, files, names)}
    if predictions.windows["single_view"].any():
        single = predictions.single_view_files().loc[files.index].assign(target=files["target"])
        levels["single_view"] = _level(loaded, single.drop(columns=["error"]), names)
    if loaded.modality == "video":
        each_view = windows[windows["averaged"]].drop(columns=["file", "averaged"])
        levels["clip"] = _level(loaded, each_view, names)
    return Evaluation(loaded.label_kind, loaded.classes, levels, unreadable, view_counts(files))


def view_counts(files: pd.DataFrame) -> dict[str, object]:
    """The views averaged per readable file: `crops`, and the min, max and mean of `clips` and of
    `views` (clips x crops; sliding windows give long videos more clips)."""

    def spread(counts: pd.Series) -> dict[str, float]:
        return {"min": int(counts.min()), "max": int(counts.max()), "mean": float(counts.mean())}

    return {
        "crops": int((files["views"] // files["windows"]).max()),
        "clips": spread(files["windows"]),
        "views": spread(files["views"]),
    }


def _level(loaded: LoadedModel, items: pd.DataFrame, names: list[str]) -> LevelResult:
    scores = items[names].to_numpy(dtype=float)
    items = items.copy()
    if loaded.label_kind == "regression":
        items["predicted"] = scores[:, 0]
        return LevelResult(M.regression_metrics(items["target"].to_numpy(), scores[:, 0]), items)
    true = items["target"].to_numpy().astype(np.int64)
    predicted = M.predict_classes(scores, loaded.threshold)
    items["target"] = np.asarray(loaded.classes)[true]
    items["predicted"] = np.asarray(loaded.classes)[predicted]
    items["correct"] = true == predicted
    matrix = M.confusion_matrix(true, predicted, len(loaded.classes))
    return LevelResult(
        M.classification_metrics(true, scores, loaded.classes, loaded.threshold),
        items,
        matrix,
        M.per_class_table(matrix, loaded.classes),
    )


def write_evaluation(evaluation: Evaluation, out: Path, context: dict[str, object]) -> list[Path]:
    """Write metrics.json (with `context`; `views` counts the views per file, `metrics` has one
    entry per level: video or image (the views averaged), single_view beside it, clip),
    `<level>_predictions.csv`, `<level>_per_class.md` and the plots of each level to `out`;
    returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json"]
    written[0].write_text(
        json.dumps(
            {
                **context,
                "task": evaluation.label_kind,
                "classes": evaluation.classes,
                "views": evaluation.views,
                "metrics": evaluation.metrics(),
                "unreadable": evaluation.unreadable,
            },
            indent=2,
        )
    )
    for level, result in evaluation.levels.items():
        written.append(out / f"{level}_predictions.csv")
        result.items.to_csv(written[-1], index=False)
        if evaluation.label_kind == "regression":
            written.append(
                plot_regression_scatter(
                    result.items["target"].to_numpy(float),
                    result.items["predicted"].to_numpy(float),
                    out / f"{level}_scatter.png",
                    result.metrics["r2"],
                    result.metrics["rmse"],
                )
            )
            continue
        written.append(out / f"{level}_per_class.md")
        written[-1].write_text(f"# {level}-level results\n\n" + markdown_table(result.per_class))
        written.append(
            plot_confusion_matrix(
                result.confusion, evaluation.classes, out / f"{level}_confusion.png"
            )
        )
        if "auroc" in result.metrics:
            positive = evaluation.classes[1]
            written.append(
                plot_roc_pr(
                    (result.items["target"] == positive).to_numpy(int),
                    result.items[positive].to_numpy(float),
                    out / f"{level}_roc_pr.png",
                    result.metrics["auroc"],
                    result.metrics["average_precision"],
                )
            )
    return written


def default_output_dir(checkpoint: Path, split: str) -> Path:
    """RUN/eval/<checkpoint stem>/<split> for RUN/checkpoints/<stem>.ckpt (else beside the
    checkpoint), so evaluations of best and last keep apart."""
    return run_directory(checkpoint) / "eval" / checkpoint.stem / split
