"""Parameter groups (weight decay, backbone learning rate) and schedule recipes."""

from __future__ import annotations

import shutil
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from vidlearn.errors import ConfigError
from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.optim import OneCycle, Plateau, WarmupCosine, warmup_cosine_factor

CLASSES = ["a", "b", "c"]
ADAMW = partial(torch.optim.AdamW, lr=0.1, weight_decay=0.05)


def _groups_by_parameter(optimizer: torch.optim.Optimizer) -> dict[int, dict]:
    return {id(p): group for group in optimizer.param_groups for p in group["params"]}


def test_biases_and_norm_parameters_get_no_weight_decay(tiny_net) -> None:
    model = tiny_net(3)
    groups = _groups_by_parameter(
        MulticlassTask(model, CLASSES, optimizer=ADAMW).configure_optimizers()
    )
    layer_norm = model.backbone[2]
    for parameter in (model.head.bias, layer_norm.weight, layer_norm.bias, model.backbone[1].bias):
        assert groups[id(parameter)]["weight_decay"] == 0.0
    assert groups[id(model.head.weight)]["weight_decay"] == 0.05


def test_backbone_parameters_get_the_scaled_learning_rate(tiny_net) -> None:
    model = tiny_net(3)
    task = MulticlassTask(model, CLASSES, optimizer=ADAMW, backbone_lr_scale=0.1)
    groups = _groups_by_parameter(task.configure_optimizers())
    assert groups[id(model.backbone[1].weight)]["lr"] == pytest.approx(0.01)
    assert groups[id(model.backbone[1].bias)]["lr"] == pytest.approx(0.01)
    assert groups[id(model.head.weight)]["lr"] == pytest.approx(0.1)


def test_frozen_backbone_parameters_stay_in_the_optimizer_for_later_unfreezing(tiny_net) -> None:
    model = tiny_net(3)
    model.backbone.requires_grad_(False)
    groups = _groups_by_parameter(
        MulticlassTask(model, CLASSES, optimizer=ADAMW).configure_optimizers()
    )
    assert id(model.backbone[1].weight) in groups


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, kernel_size=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 2, H, W)
        return self.head(self.norm(self.conv(images)).mean(dim=(2, 3)))  # (B, 3)


def test_conv_weight_decay_applies_to_convolution_weights_only() -> None:
    model = ConvNet()
    task = MulticlassTask(model, CLASSES, optimizer=ADAMW, conv_weight_decay=1e-3)
    groups = _groups_by_parameter(task.configure_optimizers())
    assert groups[id(model.conv.weight)]["weight_decay"] == 1e-3
    assert groups[id(model.conv.bias)]["weight_decay"] == 0.0
    assert groups[id(model.head.weight)]["weight_decay"] == 0.05


def test_backbone_lr_scale_without_a_backbone_is_rejected() -> None:
    with pytest.raises(ValueError, match="backbone_lr_scale=1"):
        MulticlassTask(ConvNet(), CLASSES, optimizer=ADAMW, backbone_lr_scale=0.5)


def test_warmup_cosine_factor_rises_linearly_then_follows_a_half_cosine() -> None:
    factors = [
        warmup_cosine_factor(s, warmup=2, total=6, start_factor=0.1, min_factor=0.0)
        for s in range(7)
    ]
    # warmup: 0.1, 0.55; cosine over 4 steps: 1, cos^2(pi/8)=0.854, 0.5, 0.146, 0
    expected = [0.1, 0.55, 1.0, 0.8535534, 0.5, 0.1464466, 0.0]
    assert factors == pytest.approx(expected)


def test_warmup_cosine_ends_at_the_minimum_factor_of_each_group_rate() -> None:
    groups = [
        {"params": [nn.Parameter(torch.zeros(1))], "lr": 1.0},
        {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1},
    ]
    optimizer = torch.optim.SGD(groups)
    scheduler = WarmupCosine(warmup_epochs=1, min_lr_factor=0.2).build(
        optimizer, total_steps=40, total_epochs=4
    )
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.2, 0.02])


def test_warmup_cosine_per_step_warms_up_over_the_steps_of_the_warmup_epochs() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    recipe = WarmupCosine(warmup_epochs=0.5, interval="step", warmup_start_factor=0.5)
    scheduler = recipe.build(optimizer, total_steps=40, total_epochs=4)  # 10 steps an epoch
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


def test_one_cycle_peaks_at_each_group_learning_rate(tiny_net) -> None:
    model = tiny_net(3)
    optimizer = MulticlassTask(
        model, CLASSES, optimizer=ADAMW, backbone_lr_scale=0.1
    ).configure_optimizers()
    scheduler = OneCycle(pct_start=0.5).build(optimizer, total_steps=10, total_epochs=1)
    peaks = {group["name"]: 0.0 for group in optimizer.param_groups}
    for _ in range(10):
        for group in optimizer.param_groups:
            peaks[group["name"]] = max(peaks[group["name"]], group["lr"])
        optimizer.step()
        scheduler.step()
    assert peaks["head/default"] == pytest.approx(0.1)
    assert peaks["backbone/default"] == pytest.approx(0.01)


def test_plateau_recipe_is_handed_to_lightning_with_its_monitor_and_epoch_interval(
    tiny_net, make_batch, fit
) -> None:
    task = MulticlassTask(
        tiny_net(3),
        CLASSES,
        optimizer=ADAMW,
        scheduler=Plateau(monitor="val/loss", factor=0.8, patience=5),
    )
    batch = make_batch(torch.tensor([0, 1, 2, 0]))
    trainer = fit(task, batch, val_batch=batch)
    config = trainer.lr_scheduler_configs[0]
    assert (config.monitor, config.interval) == ("val/loss", "epoch")
    assert (config.scheduler.factor, config.scheduler.patience) == (0.8, 5)


@pytest.mark.parametrize("recipe", [WarmupCosine(), OneCycle()], ids=["cosine", "one_cycle"])
def test_a_schedule_without_an_epoch_limit_is_a_config_error_naming_both_keys(
    recipe, tiny_net, make_batch, fit
) -> None:
    """Issue 21 item 15: trainer.max_epochs=-1 raised OverflowError (int of infinite steps)."""
    task = MulticlassTask(
        tiny_net(2), ["a", "b"], optimizer=partial(torch.optim.SGD, lr=0.1), scheduler=recipe
    )
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs=-1.*scheduler"):
        fit(task, make_batch(torch.tensor([0, 1])), max_epochs=-1)


def _resume(task_of, batch, checkpoint, tmp_path, max_epochs: int) -> pl.Trainer:
    """Fit a fresh task from `checkpoint` (a run of 2 epochs of 3 steps) up to `max_epochs`."""
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task_of(), DataLoader([batch] * 3, batch_size=None), ckpt_path=checkpoint)
    return trainer


@pytest.fixture
def stopped_run(tiny_net, make_batch, fit, tmp_path):
    """`stopped_run(recipe)`: a task factory, its batch, and the checkpoint after epoch 1 of a
    run planned for 2 epochs of 3 steps under `recipe`."""

    def _run(recipe):
        def task_of():
            return MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAMW, scheduler=recipe)

        batch = make_batch(torch.tensor([0, 1, 2, 0]))
        saver = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_top_k=-1)  # every epoch
        fit(task_of(), batch, repeats=3, max_epochs=2, callbacks=[saver], enable_checkpointing=True)
        first = tmp_path / "first.ckpt"
        shutil.copy(tmp_path / "checkpoints" / "epoch=0-step=3.ckpt", first)
        return task_of, batch, str(first)

    return _run


@pytest.mark.parametrize(
    "recipe",
    [WarmupCosine(), WarmupCosine(interval="step"), OneCycle()],
    ids=["cosine", "cosine_per_step", "one_cycle"],
)
def test_resuming_with_another_max_epochs_is_refused_naming_the_key(
    recipe, stopped_run, tmp_path
) -> None:
    """The schedule's length is fixed when the run starts: a resume with trainer.max_epochs=4
    either crashed OneCycleLR past its 6 saved steps or rescaled the cosine mid-run (the rate
    jumping up); it is refused before a step is taken."""
    task_of, batch, checkpoint = stopped_run(recipe)
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs=4.*checkpoint.*2"):
        _resume(task_of, batch, checkpoint, tmp_path, max_epochs=4)


@pytest.mark.parametrize("recipe", [WarmupCosine(), OneCycle()], ids=["cosine", "one_cycle"])
def test_resuming_with_the_same_max_epochs_continues_the_schedule(
    recipe, stopped_run, tmp_path
) -> None:
    task_of, batch, checkpoint = stopped_run(recipe)
    trainer = _resume(task_of, batch, checkpoint, tmp_path, max_epochs=2)
    assert trainer.global_step == 6


@pytest.mark.parametrize(
    "options",
    [
        {"accumulate_grad_batches": 2},  # 5 batches: the last step takes one batch
        {"limit_train_batches": 0.6},
        {"limit_train_batches": 3, "accumulate_grad_batches": 2},
    ],
    ids=["accumulated_partial", "limited_fraction", "limited_count_accumulated"],
)
@pytest.mark.parametrize("recipe", [WarmupCosine(interval="step"), OneCycle()], ids=["cos", "1c"])
def test_a_same_settings_resume_of_a_per_step_schedule_is_not_refused(
    recipe, options, tiny_net, make_batch, tmp_path
) -> None:
    """Resumed from the end of epoch 1 and from mid-epoch 1 (after step 1), with the run's own
    trainer options, the schedule continues to the planned last step."""
    batch = make_batch(torch.tensor([0, 1, 2, 0]))

    def run(checkpoint: str | None, callbacks: list) -> pl.Trainer:
        trainer = pl.Trainer(
            accelerator="cpu",
            max_epochs=2,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
            callbacks=callbacks,
            **options,
        )
        task = MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAMW, scheduler=recipe)
        trainer.fit(task, DataLoader([batch] * 5, batch_size=None), ckpt_path=checkpoint)
        return trainer

    savers = [
        ModelCheckpoint(dirpath=tmp_path / "epochs", save_top_k=-1),
        ModelCheckpoint(dirpath=tmp_path / "steps", save_top_k=-1, every_n_train_steps=1),
    ]
    planned = run(None, savers).global_step
    for checkpoint in ("epochs/epoch=0-step=*.ckpt", "steps/epoch=0-step=1.ckpt"):
        (path,) = tmp_path.glob(checkpoint)
        assert run(str(path), []).global_step == planned, checkpoint
