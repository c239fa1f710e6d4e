"""Pretrained weights that cannot be had are reported before the data is set up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from vidlearn.cli.pretrained import fetch_pretrained, weights_preprocessing
from vidlearn.cli.train import build_datamodule, train


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


KINETICS_MEAN = pytest.approx([0.43216, 0.394666, 0.37645], abs=1e-5)


def test_pretrained_weights_name_the_statistics_they_were_trained_with() -> None:
    model = OmegaConf.create(
        {"_target_": "vidlearn.models.cnn3d.Video3DCNN", "arch": "r3d_18", "weights": "kinetics400"}
    )
    assert list(weights_preprocessing(model).mean) == KINETICS_MEAN
    assert weights_preprocessing(frame_gru_on("none")) is None


def test_a_pretrained_preset_normalises_with_its_weights_statistics(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    """model=r3d_18 (Kinetics weights) with data.mean/std left null trains on Kinetics statistics,
    and the checkpoint's preprocessing (from the DataModule) records them."""
    cfg = compose_train("model=r3d_18", f"data.manifest={demo_videos}", "data.probe=false")
    datamodule = build_datamodule(cfg, "multiclass")
    datamodule.setup("fit")
    assert datamodule.preprocessing()["mean"] == KINETICS_MEAN
    assert datamodule.preprocessing()["std"] == pytest.approx([0.22803, 0.22145, 0.216989], 1e-4)


def test_data_mean_and_std_set_by_the_user_win_over_the_weights(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(
        "model=r3d_18",
        f"data.manifest={demo_videos}",
        "data.probe=false",
        "data.mean=[0.5]",
        "data.std=[0.25]",
    )
    datamodule = build_datamodule(cfg, "multiclass")
    datamodule.setup("fit")
    assert (datamodule.mean, datamodule.std) == ([0.5] * 3, [0.25] * 3)


def test_a_model_trained_from_scratch_takes_the_data_configs_default(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(f"data.manifest={demo_videos}", "data.probe=false")
    datamodule = build_datamodule(cfg, "multiclass")
    datamodule.setup("fit")
    assert (datamodule.mean, datamodule.std) == ([0.5] * 3, [0.25] * 3)


def test_torchvisions_file_downloaded_by_hand_names_the_statistics_of_its_weights(
    tmp_path: Path, empty_hub: None
) -> None:
    """model.weights=<path>/r3d_18-b3b3357e.pth needs no download and normalises as
    model.weights=kinetics400 does; a file named otherwise takes the data config's."""
    for name in ("r3d_18-b3b3357e.pth", "mine.pth"):
        (tmp_path / name).write_bytes(b"")  # only the name is read here
    model = {"_target_": "vidlearn.models.cnn3d.Video3DCNN", "arch": "r3d_18"}
    by_hand = OmegaConf.create({**model, "weights": str(tmp_path / "r3d_18-b3b3357e.pth")})
    fetch_pretrained(by_hand)
    assert list(weights_preprocessing(by_hand).mean) == KINETICS_MEAN
    assert (
        weights_preprocessing(OmegaConf.create({**model, "weights": str(tmp_path / "mine.pth")}))
        is None
    )


@pytest.mark.slow  # two short runs of r3d_18: about 15 s
def test_a_runs_checkpoint_with_class_weights_starts_a_new_run_as_model_weights(
    compose_train: Callable[..., DictConfig], demo_videos: Path, tmp_path: Path
) -> None:
    """What a resume refused for another schedule length advises: model.weights=<checkpoint>.
    The checkpoint of a run with class_weights=balanced holds the loss's `criterion.weight`
    beside the model; it failed as 'state_dict does not fit' (every key missing)."""
    tiny = [
        f"data.manifest={demo_videos}",
        "model=r3d_18",
        "data.size=16",
        "data.frames=2",
        "data.batch_size=4",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "test=false",
        "task.class_weights=balanced",
    ]
    first = train(compose_train(*tiny, "model.weights=none", f"paths.output_dir={tmp_path}/a"))
    checkpoint = first["best_checkpoint"]
    second = compose_train(*tiny, f"model.weights={checkpoint}", f"paths.output_dir={tmp_path}/b")
    assert train(second)["status"] == "ok"
