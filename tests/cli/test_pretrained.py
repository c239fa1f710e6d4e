"""Pretrained weights that cannot be had are reported before the data is set up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from vidlearn.cli.pretrained import fetch_pretrained
from vidlearn.cli.train import train


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point torch hub at an empty folder: no pretrained file is cached."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def frame_gru_on(backbone_weights: str) -> DictConfig:
    return OmegaConf.create(
        {
            "_target_": "vidlearn.models.frame_gru.FrameGRU",
            "backbone": {
                "_target_": "vidlearn.models.backbones.TorchvisionBackbone",
                "name": "resnet18",
                "weights": backbone_weights,
                "in_channels": "${data.channels}",
            },
        }
    )


def test_a_nested_backbone_without_its_weights_file_is_reported(empty_hub: None) -> None:
    with pytest.raises(FileNotFoundError, match="resnet18"):
        fetch_pretrained(frame_gru_on("imagenet"))


def test_models_without_pretrained_weights_need_no_file(empty_hub: None) -> None:
    fetch_pretrained(frame_gru_on("none"))


def test_missing_3d_cnn_weights_stop_the_run_before_the_manifest_is_read(
    compose_train: Callable[..., DictConfig], tmp_path: Path, empty_hub: None
) -> None:
    cfg = compose_train("model=r3d_18", f"data.manifest={tmp_path / 'absent.csv'}")
    with pytest.raises(FileNotFoundError, match="r3d_18"):
        train(cfg)
