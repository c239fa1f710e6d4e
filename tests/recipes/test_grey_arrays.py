"""Issue 15, a user's own grey .npy arrays: the presets follow the data with no channel or clip
length override, and a model that cannot take the clips is refused before training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from vidlearn.cli.train import train
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.errors import ConfigError

USER_OVERRIDES = (
    "task=regression",
    "data.label_column=age",
    "model=hms_cnn_rnn",
    "data.frames=8",
    "data.size=64",
)


def test_setup_reads_one_channel_and_fits_the_default_statistics(
    grey_array_manifest: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(
        grey_array_manifest,
        path_column="path",
        path_template=None,
        split_column="split",
        max_bad_fraction=0.5,  # the fixture's two broken arrays are probed out first
    )
    datamodule.setup("fit")
    assert datamodule.channels == 1
    assert datamodule.preprocessing()["channels"] == 1
    assert datamodule.datasets["train"][2]["input"].shape == (6, 1, 32, 32)


def test_rgb_statistics_on_grey_arrays_are_refused_in_setup(
    grey_array_manifest: Path, cine_datamodule: Callable[..., VideoDataModule]
) -> None:
    datamodule = cine_datamodule(
        grey_array_manifest,
        path_column="path",
        path_template=None,
        split_column="split",
        mean=[0.485, 0.456, 0.406],
        num_workers=2,
        max_bad_fraction=0.5,  # the fixture's two broken arrays are probed out first
    )
    with pytest.raises(ConfigError, match=r"case_00.npy has 1 channel.*data.mean has 3 values"):
        datamodule.setup("fit")


def test_grey_array_manifest_trains_with_only_the_users_overrides(
    compose_train: Callable[..., DictConfig], grey_array_manifest: Path
) -> None:
    cfg = compose_train(
        *USER_OVERRIDES, f"data.manifest={grey_array_manifest}", "data.max_bad_fraction=0.5"
    )
    summary = train(cfg)
    assert summary["status"] == "ok" and "val/r2" in summary["metrics"]
    skipped = {Path(record["path"]).name: record["stage"] for record in summary["skipped"]}
    assert skipped == {"broken_0.npy": "probe", "broken_1.npy": "probe"}
    assert summary["num_train"] == 6  # the 8 training rows less the two broken arrays


def test_s3d_on_too_short_clips_is_refused_before_training_with_its_limits(
    compose_train: Callable[..., DictConfig], grey_array_manifest: Path
) -> None:
    cfg = compose_train(
        "task=regression",
        "data.label_column=age",
        f"data.manifest={grey_array_manifest}",
        "model=s3d",
        "model.weights=none",
        "data.frames=4",
        "data.size=64",
        "data.max_bad_fraction=0.5",
    )
    with pytest.raises(ConfigError, match=r"model=s3d needs data.frames >= 6 at data.size=64 "):
        train(cfg)
    run = Path(cfg.paths.output_dir)
    assert not (run / "metrics.csv").exists() and not (run / "checkpoints").exists()
