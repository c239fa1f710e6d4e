"""experiment=hms_cine_regression / hms_cine_binary: each element of the cardiac recipe's
training setup, read from the composed and instantiated config, and a one-epoch run of each."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from vidlearn.cli.train import train
from vidlearn.inference.checkpoint import load_checkpoint
from vidlearn.models.hms_cnn_rnn import HmsCnnRnn
from vidlearn.tasks.callbacks import ZeroMetricStop
from vidlearn.tasks.optim import Plateau

PRESETS = ("hms_cine_regression", "hms_cine_binary")
MONITORS = {"hms_cine_regression": "val/r2", "hms_cine_binary": "val/f1"}


@pytest.fixture
def preset(
    compose_train: Callable[..., DictConfig], shared_cine: Path
) -> Callable[..., DictConfig]:
    """Compose a preset on the tiny cine data (6 grey frames per clip).

    data.channels is given because these tests build the model without setting up the data,
    which is where vidlearn-train reads it from the arrays.
    """

    def compose(name: str, *overrides: str) -> DictConfig:
        return compose_train(
            f"experiment={name}",
            f"data.manifest={shared_cine}",
            "data.frames=6",
            "data.channels=1",
            *overrides,
        )

    return compose


def build_task(cfg: DictConfig) -> torch.nn.Module:
    """The task as vidlearn-train builds it, without a scheduler; regression targets are taken
    as already standardised (mean 0, std 1)."""
    task_class = get_class(cfg.task._target_)
    classes = ["0", "1"] if task_class.label_kind == "binary" else []
    statistics = {"target_stats": [0.0, 1.0]} if task_class.label_kind == "regression" else {}
    return instantiate(
        cfg.task,
        model=instantiate(cfg.model, num_outputs=1),
        optimizer=instantiate(cfg.optimizer),
        scheduler=None,
        classes=classes,
        preprocessing=None,
        model_config=None,
        _recursive_=False,
        **statistics,
    )


@pytest.mark.parametrize("name", PRESETS)
def test_gradients_are_clipped_to_norm_1(preset: Callable, name: str) -> None:
    trainer = instantiate(preset(name).trainer, logger=False, enable_checkpointing=False)
    assert trainer.gradient_clip_val == 1.0
    assert trainer.gradient_clip_algorithm == "norm"


@pytest.mark.parametrize("name", PRESETS)
def test_learning_rate_drops_by_0_8_after_5_epochs_without_improvement(
    preset: Callable, name: str
) -> None:
    recipe = instantiate(preset(name).scheduler)
    assert isinstance(recipe, Plateau) and recipe.monitor == "val/loss"
    parameter = torch.nn.Parameter(torch.zeros(1))
    scheduler = recipe.build(torch.optim.Adam([parameter], lr=1e-3), 0, 0)
    assert (scheduler.factor, scheduler.patience, scheduler.mode) == (0.8, 5, "min")


@pytest.mark.parametrize("name", PRESETS)
def test_early_stopping_waits_15_epochs_and_the_best_checkpoint_is_kept(
    preset: Callable, name: str
) -> None:
    cfg = preset(name)
    callbacks = [instantiate(node) for node in cfg.callbacks.values()]
    (stopping,) = [c for c in callbacks if isinstance(c, EarlyStopping)]
    assert (stopping.monitor, stopping.mode, stopping.patience) == (MONITORS[name], "max", 15)
    # A NaN monitored metric (AUROC of a one-class validation split) counts as no improvement
    # instead of stopping the run at once.
    assert not stopping.check_finite
    best = callbacks[0]
    assert isinstance(best, ModelCheckpoint) and best.monitor == MONITORS[name]
    assert best.save_top_k == 1 and best.mode == "max"


def test_binary_runs_stop_when_f1_stays_zero_for_10_epochs(preset: Callable) -> None:
    binary = [instantiate(node) for node in preset("hms_cine_binary").callbacks.values()]
    regression = [instantiate(node) for node in preset("hms_cine_regression").callbacks.values()]
    (stop,) = [c for c in binary if isinstance(c, ZeroMetricStop)]
    assert (stop.monitor, stop.patience) == ("val/f1", 10)
    assert not any(isinstance(c, ZeroMetricStop) for c in regression)


@pytest.mark.parametrize("name", PRESETS)
def test_adam_at_1e_3_with_weight_decay_2e_3_on_the_conv_kernels_only(
    preset: Callable, name: str
) -> None:
    task = build_task(preset(name))
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert {group["lr"] for group in groups.values()} == {1e-3}
    conv_ids = {id(p) for p in task.model.conv_parameters()}
    assert {id(p) for p in groups["head/conv"]["params"]} == conv_ids
    assert groups["head/conv"]["weight_decay"] == 2e-3
    others = [group for name, group in groups.items() if name != "head/conv"]
    assert all(group["weight_decay"] == 0 for group in others)


@pytest.mark.parametrize("name", PRESETS)
def test_a_nan_or_infinite_loss_stops_the_run(preset: Callable, name: str) -> None:
    assert build_task(preset(name)).hparams.on_nonfinite_loss == "raise"


def test_regression_minimises_rmse_and_monitors_r2(preset: Callable) -> None:
    task = build_task(preset("hms_cine_regression"))
    logits, target = torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 6.0])
    assert task.compute_loss(logits, target).item() == pytest.approx(5.0**0.5)
    assert task.hparams.standardize_targets
    assert {"val/r2"} <= set(task.val_metrics.keys())


def test_binary_minimises_cross_entropy_and_reports_f1_precision_and_log_loss(
    preset: Callable,
) -> None:
    task = build_task(preset("hms_cine_binary"))
    logits, target = torch.tensor([[0.0], [2.0]]), torch.tensor([1.0, 0.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), target)
    assert task.compute_loss(logits, target).item() == pytest.approx(expected.item())
    assert {"val/f1", "val/average_precision", "val/log_loss"} <= set(task.val_metrics.keys())


@pytest.mark.parametrize("name", PRESETS)
def test_the_model_follows_the_data_clip_length_and_size(preset: Callable, name: str) -> None:
    cfg = preset(name, "data.size=72")
    model = instantiate(cfg.model, num_outputs=1)
    assert isinstance(model, HmsCnnRnn)
    assert model(torch.zeros(1, 6, 1, 72, 72)).shape == (1, 1)  # grey: one input channel


@pytest.mark.parametrize("name", PRESETS)
def test_the_recipe_augments_and_max_normalises_the_cine_folds(preset: Callable, name: str) -> None:
    cfg = preset(name)
    assert cfg.data.per_frame_max_norm and cfg.data.fold_files == "folds/fold_{fold}_{split}.csv"
    assert cfg.data.normalise_on_device  # uint8 batches with their peaks
    (affine,) = instantiate(cfg.augment).transforms
    assert affine.rotate == (-25, 25)
    assert cfg.data.label_column == {"hms_cine_regression": "age", "hms_cine_binary": "sex"}[name]


def test_regression_preset_trains_one_epoch_with_r2_over_the_whole_validation_set(
    preset: Callable,
) -> None:
    # batches of 2 over 4 validation rows: an average of per-batch R2 would differ.
    cfg = preset("hms_cine_regression", "data.batch_size=2", "data.frames=3")
    summary = train(cfg)
    assert summary["status"] == "ok" and summary["num_val"] == 4
    assert json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text()) == summary
    loaded = load_checkpoint(summary["best_checkpoint"])
    datamodule = instantiate(cfg.data, label_kind="regression")
    datamodule.setup("fit")
    batches = list(datamodule.val_dataloader())
    normalise = datamodule.batch_normalisation()  # uint8 clips and their peaks -> model inputs
    with torch.no_grad():
        # scores: predictions in years (the preset standardises the targets)
        predictions = torch.cat(
            [loaded.scores(loaded.model(normalise(b["input"], b["peak"])))[:, 0] for b in batches]
        )
    target = torch.cat([batch["target"] for batch in batches])
    r2 = 1 - ((target - predictions) ** 2).sum() / ((target - target.mean()) ** 2).sum()
    assert summary["metrics"]["val/r2"] == pytest.approx(r2.item(), rel=1e-4, abs=1e-4)


def test_binary_preset_trains_one_epoch_on_sex_of_the_same_ids(preset: Callable) -> None:
    summary = train(preset("hms_cine_binary", "data.frames=3"))
    assert summary["status"] == "ok" and summary["classes"] == ["0", "1"]
    assert (summary["num_train"], summary["num_val"]) == (16, 4)
    metrics = summary["metrics"]
    assert 0.0 <= metrics["val/f1"] <= 1.0 and metrics["val/log_loss"] > 0
