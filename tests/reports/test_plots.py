"""Plots are valid PNG files; training curves come from a CSVLogger-shaped metrics.csv."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidlearn.reports.plots import (
    epoch_metrics,
    plot_confusion_matrix,
    plot_training_curves,
    training_curves,
)

METRICS_CSV = """epoch,step,lr-AdamW,train/loss,train/accuracy,val/loss,val/accuracy,val/recall/a
,0,0.001,,,,,
0,4,,,,1.2,0.3,0.5
0,4,,1.1,0.4,,,
1,9,,,,0.9,0.6,0.7
1,9,,0.8,0.7,,,
"""


def _is_png(path: Path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.width > 0 and image.height > 0


def test_epoch_metrics_keep_one_row_per_epoch(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    table = epoch_metrics(tmp_path / "metrics.csv")
    assert table.index.tolist() == [0, 1]
    assert table["val/loss"].tolist() == [1.2, 0.9] and table["train/accuracy"].tolist() == [
        0.4,
        0.7,
    ]


def test_training_curves_png(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    assert _is_png(
        plot_training_curves(tmp_path / "metrics.csv", tmp_path / "plots" / "curves.png")
    )


def test_training_curves_need_an_epoch_column(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("step,loss\n0,1.0\n")
    with pytest.raises(ValueError, match="no 'epoch' column"):
        plot_training_curves(tmp_path / "metrics.csv", tmp_path / "curves.png")


def test_confusion_matrix_png(tmp_path: Path) -> None:
    out = plot_confusion_matrix(
        np.array([[3, 1], [0, 4]]), ["no", "yes"], tmp_path / "confusion.png"
    )
    assert _is_png(out)


# A 1-epoch run: epoch 0 of training, then the best checkpoint's validation and test after fit,
# which Lightning logs under epoch 1.
ONE_EPOCH_CSV = """epoch,step,train/loss,val/loss,test/loss
0,4,,1.2,
0,4,1.1,,
1,5,,1.0,
1,5,,,1.3
"""


def test_the_best_checkpoints_evaluation_is_not_drawn_as_an_epoch(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(ONE_EPOCH_CSV)
    axis = training_curves(tmp_path / "metrics.csv").axes[0]
    epochs = {line.get_label(): list(line.get_xdata()) for line in axis.lines}
    assert epochs["train"] == [0] and epochs["val"] == [0]
    assert list(axis.lines[-1].get_ydata()) == [1.3, 1.3]  # horizontal: test (best checkpoint)
    assert {"val (best checkpoint)", "test (best checkpoint)"} <= set(epochs)
    ticks = [tick for tick in axis.get_xticks() if -0.5 <= tick <= 0.5]
    assert all(float(tick).is_integer() for tick in ticks)
