"""vidlearn-train end to end on tiny demo data: outputs, summary.json and the checkpoint."""

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import recording_augment
import torch
from conftest import compose_small_train
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from vidlearn.cli.train import (
    batch_augment,
    set_monitor,
    task_statistics,
    to_channels_last,
    train,
)
from vidlearn.errors import ConfigError
from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.regression import RegressionTask


def test_train_writes_summary_with_metrics_and_counts(video_checkpoint: Path) -> None:
    run = video_checkpoint.parent.parent  # the shared one-epoch run on the 30 demo videos
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "ok"
    assert summary["num_train"] + summary["num_val"] + summary["num_test"] == 30
    assert 0.0 <= summary["metrics"]["val/accuracy"] <= 1.0
    assert summary["skipped"] == []
    assert Path(summary["best_checkpoint"]).is_file()
    assert (run / "config.yaml").is_file() and (run / "splits.csv").is_file()


def test_summary_gives_the_final_tests_single_and_multi_view_figures(
    video_checkpoint: Path,
) -> None:
    """The default views (uniform, 5 clips x 1 crop) of 12-frame videos read in 6-frame clips:
    starts 0, 2, 3, 4 and 6, the centre clip (start 3) among them."""
    summary = json.loads((video_checkpoint.parent.parent / "summary.json").read_text())
    views = summary["test_views"]
    assert views["views"]["crops"] == 1 and views["views"]["views"]["mean"] == 5.0
    assert views["single_view"]["count"] == views["multi_view"]["count"] == summary["num_test"]
    # the single view is the one centre clip that trainer.test scores through the DataModule
    assert views["single_view"]["accuracy"] == pytest.approx(summary["metrics"]["test/accuracy"])
    assert 0.0 <= views["multi_view"]["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (("views.crops=2",), "views.crops must be 1 or 3"),
        (("views=uniform", "views.num_clips=0"), "num_clips must be"),
    ],
)
def test_a_bad_views_key_fails_before_training(
    compose_train: Callable[..., DictConfig],
    demo_videos: Path,
    override: tuple[str, ...],
    message: str,
) -> None:
    """The views are built for the final test only: before the fix a bad key failed after the
    whole training run, its checkpoints written and its test lost."""
    cfg = compose_train(f"data.manifest={demo_videos}", "data.size=32", "data.frames=6", *override)
    with pytest.raises(Exception, match=message):
        train(cfg)
    assert not any(Path(cfg.paths.output_dir).rglob("*.ckpt"))


def test_checkpoint_carries_classes_and_preprocessing(video_checkpoint: Path) -> None:
    checkpoint = torch.load(video_checkpoint, weights_only=True, map_location="cpu")
    hparams = checkpoint["hyper_parameters"]
    assert hparams["classes"] == ["anticlockwise", "clockwise", "erratic"]
    assert hparams["preprocessing"]["frames"] == 6 and hparams["preprocessing"]["size"] == 32


def test_posture_preset_trains_on_filtered_images(
    compose_train: Callable[..., DictConfig], demo_images: Path
) -> None:
    cfg = compose_train(
        "experiment=lookdeep_posture",
        f"data.manifest={demo_images}",
        "data.size=48",
        "model.hidden_sizes=[32,32,16]",
    )
    summary = train(cfg)
    assert summary["classes"] == ["lying", "sitting", "standing"]
    assert summary["dropped_rows"] > 0
    assert torch.isfinite(torch.tensor(summary["metrics"]["val/loss"]))


@pytest.fixture(scope="module")
def two_epochs_without_improvement(
    tmp_path_factory: pytest.TempPathFactory, demo_videos: Path
) -> Path:
    """The run directory of two epochs at optimizer.lr=0: the monitored metric never improves
    after epoch 0. Shared by the tests that read a two-epoch run's files."""
    cfg = compose_small_train(
        tmp_path_factory.mktemp("two_epochs"),
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "trainer.max_epochs=2",
        "optimizer.lr=0.0",
    )
    train(cfg)
    return Path(cfg.paths.output_dir)


def test_train_draws_curves_and_confusion_matrix(two_epochs_without_improvement: Path) -> None:
    for name in ("training_curves.png", "val_confusion.png"):
        with Image.open(two_epochs_without_improvement / "plots" / name) as image:
            assert image.width > 100 and image.height > 100


def test_last_checkpoint_is_the_final_epoch_even_without_improvement(
    two_epochs_without_improvement: Path,
) -> None:
    last = torch.load(
        two_epochs_without_improvement / "checkpoints" / "last.ckpt", weights_only=True
    )
    assert last["epoch"] == 1


def test_balanced_class_weights_come_from_the_train_split(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "sampler=none",
        "task.class_weights=balanced",
    )
    summary = train(cfg)
    weights = torch.load(summary["best_checkpoint"], weights_only=True)["hyper_parameters"][
        "class_weights"
    ]
    train_counts = pd.read_csv(Path(cfg.paths.output_dir) / "splits.csv").query("split == 'train'")[
        "label"
    ]
    counts = train_counts.value_counts().reindex(summary["classes"]).to_numpy()
    # Inverse frequency: weight x count is the same for every class.
    assert np.allclose(np.asarray(weights) * counts, weights[0] * counts[0])


@pytest.mark.parametrize(
    "option", ["channels_last=true", pytest.param("compile=true", marks=pytest.mark.slow)]
)
def test_speed_options_train_and_keep_checkpoint_names(
    compose_train: Callable[..., DictConfig], demo_videos: Path, option: str
) -> None:
    cfg = compose_train(f"data.manifest={demo_videos}", "data.size=32", "data.frames=6", option)
    summary = train(cfg)
    state = torch.load(summary["best_checkpoint"], weights_only=True)["state_dict"]
    assert "model.backbone.layers.0.weight" in state
    assert np.isfinite(summary["metrics"]["val/loss"])


def test_train_normalises_and_augments_on_the_device(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "augment=light_device",
        "data.normalise_on_device=true",  # workers only decode, resize and collate uint8
        "data.batch_size=4",
    )
    cfg.augment.device = {
        "_target_": "recording_augment.RecordingAugment",
        "inner": cfg.augment.device,
    }
    recording_augment.CALLS.clear()
    summary = train(cfg)
    assert summary["status"] == "ok" and summary["metrics"]["val/loss"] < float("inf")
    # The pre-flight's batch of 2, then each training batch, normalised first; never evaluation's.
    assert recording_augment.CALLS, "the task never called batch_augment"
    preflight, *training = recording_augment.CALLS
    assert preflight.batch_size == 2
    assert sum(call.batch_size for call in training) == summary["num_train"]
    assert all(call.dtype == torch.float32 for call in training)
    assert any(call.changed for call in training)


def test_erasing_runs_after_the_augment_presets_device_steps(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train(
        "augment=light_device", "erasing=random", "data.mean=[0.5]", "data.std=[0.25]"
    )
    steps = [type(step).__name__ for step in batch_augment(cfg).steps]
    assert steps == ["DeviceAugmentations", "ClipRandomErasingOnDevice"]


def test_the_default_run_augments_nothing_on_the_device(
    compose_train: Callable[..., DictConfig],
) -> None:
    assert batch_augment(compose_train()) is None


@pytest.mark.slow
def test_train_mixes_and_erases_training_batches(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "data.batch_size=4",
        "mix=mixup_cutmix",
        "erasing=random",
        "task.label_smoothing=0.1",
    )
    summary = train(cfg)
    assert summary["status"] == "ok" and np.isfinite(summary["metrics"]["val/loss"])


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val/loss", "min"), ("val/mae", "min"), ("val/log_loss", "min"), ("val/f1", "max")],
)
def test_monitor_mode_follows_the_monitored_metric(monitor: str, mode: str) -> None:
    """Issue 21 item 6: monitor=val/loss took the multiclass default "max"."""
    cfg = OmegaConf.create({"monitor": monitor, "monitor_mode": None})
    set_monitor(cfg, MulticlassTask)
    assert cfg.monitor_mode == mode


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val/recall/loss", "max"), ("val/recall/error", "max"), ("train/loss_step", "min")],
)
def test_monitor_mode_reads_the_metric_not_a_class_name(monitor: str, mode: str) -> None:
    """The metric is the name after the split: the recall of a class named 'loss' is maximised
    (the last segment, the class name, made it 'min'); train/loss_step (shown in the progress
    bar) is a loss (its '_step' suffix made it 'max')."""
    cfg = OmegaConf.create({"monitor": monitor, "monitor_mode": None})
    set_monitor(cfg, MulticlassTask)
    assert cfg.monitor_mode == mode


def test_a_monitor_mode_against_the_metric_is_a_config_error() -> None:
    cfg = OmegaConf.create({"monitor": "val/loss", "monitor_mode": "max"})
    with pytest.raises(ConfigError, match=r"monitor_mode=max.*val/loss"):
        set_monitor(cfg, MulticlassTask)


def test_channels_last_gives_3d_convolutions_the_3d_layout() -> None:
    """Issue 21 item 14: channels_last=true failed on every 3D CNN ("required rank 4 tensor")."""
    model = torch.nn.ModuleDict(
        {"clip": torch.nn.Conv3d(3, 4, 3), "frame": torch.nn.Conv2d(3, 4, 3)}
    )
    to_channels_last(model)
    assert model["clip"].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model["frame"].weight.is_contiguous(memory_format=torch.channels_last)
    assert model["clip"](torch.randn(1, 3, 4, 8, 8)).shape == (1, 4, 2, 6, 6)


def test_constant_regression_targets_reach_the_tasks_zero_std_check() -> None:
    """The training targets' std goes to the task as it is (0 here), so the task's ConfigError
    'are all targets equal?' can fire instead of a silent std of 1."""
    datamodule = SimpleNamespace(split_rows=lambda split: pd.DataFrame({"target": [3.0, 3.0]}))
    task_cfg = OmegaConf.create({"standardize_targets": True})
    stats = task_statistics("regression", task_cfg, datamodule)
    assert stats == {"target_stats": (3.0, 0.0)}
    with pytest.raises(ConfigError, match="are all targets equal"):
        RegressionTask(torch.nn.Linear(1, 1), optimizer=None, standardize_targets=True, **stats)
