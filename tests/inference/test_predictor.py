"""predict_files and top_k_table on a tiny stand-in network: which frames each view reads, how
windows are timed, unreadable files, and the binary threshold."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from vidlearn.inference.checkpoint import LoadedModel
from vidlearn.inference.predictor import Predictions, predict_files, top_k_table


class MeanLogits(nn.Module):
    """(B, T, C, H, W) -> (B, 2): the mean input value and its negation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)  # only read for the channel count

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        mean = inputs.flatten(1).mean(dim=1, keepdim=True)
        return torch.cat([mean, -mean], dim=1)


def _loaded(**preprocessing: object) -> LoadedModel:
    pre = {"size": 8, "mean": [0.5], "std": [0.25], "frames": 4, "modality": "video"}
    return LoadedModel(
        Path("x.ckpt"), MeanLogits(), "multiclass", ["a", "b"], {**pre, **preprocessing}
    )


def _array(path: Path, frames: int = 16, channels: int | None = 3) -> Path:
    shape = (frames, 8, 8) if channels is None else (frames, 8, 8, channels)
    np.save(path, np.zeros(shape, dtype=np.uint8))
    return path


def test_default_views_read_frames_with_the_trained_stride(tmp_path: Path) -> None:
    """A model trained on frames 3 apart sees windows of frames 3 apart, not consecutive ones."""
    loaded = _loaded(stride=3, target_fps=None)
    windows = predict_files(loaded, [_array(tmp_path / "a.npy")], progress=False).windows
    # 16 frames, clips of 4 frames 3 apart span 10: windows [0, 10) and the last one [6, 16)
    assert windows["start_frame"].tolist() == [0, 6]
    assert windows["end_frame"].tolist() == [10, 16]


def test_array_windows_are_timed_in_frames_not_seconds(tmp_path: Path) -> None:
    windows = predict_files(_loaded(), [_array(tmp_path / "a.npy", 8)], progress=False).windows
    assert windows["start_frame"].tolist() == [0, 4]
    assert windows["start_s"].isna().all() and windows["end_s"].isna().all()


def test_a_grey_array_among_rgb_ones_is_reported_and_the_rest_predicted(tmp_path: Path) -> None:
    paths = [_array(tmp_path / "rgb.npy"), _array(tmp_path / "grey.npy", channels=None)]
    files = predict_files(_loaded(channels=3), paths, progress=False).files
    assert files["error"][0] == "" and files["windows"][0] == 4
    assert "1 channel" in files["error"][1] and "3" in files["error"][1]
    assert files["windows"][1] == 0 and np.isnan(files.loc[1, "a"])


def test_binary_top_class_follows_the_checkpoint_threshold() -> None:
    files = pd.DataFrame(
        {
            "path": ["x", "y"],
            "windows": [1, 1],
            "views": [1, 1],
            "error": ["", ""],
            "neg": [0.4, 0.1],
            "pos": [0.6, 0.9],
        }
    )
    table = top_k_table(
        Predictions(files, pd.DataFrame(), ["neg", "pos"]), "binary", 2, threshold=0.8
    )
    assert table["class_1"].tolist() == ["neg", "pos"]
    assert table["probability_1"].tolist() == pytest.approx([0.4, 0.9])
    assert table["class_2"].tolist() == ["pos", "neg"]
