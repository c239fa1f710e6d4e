"""experiment=finetune_swin3d_t / finetune_r2plus1d_18: each element of the fine-tuning recipes
that the README's Recipes section lists, read from the composed config, and one training step of
each on the CPU (random weights, tiny clips) through vidlearn-train to its multi-view test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vidlearn.callbacks.ema import ExponentialMovingAverage
from vidlearn.cli.train import train
from vidlearn.tasks.mix import MixUpCutMix
from vidlearn.tasks.optim import WarmupCosine, check_layer_decay

# What each preset sets (README, "Recipes"): config key -> value.
RECIPES = {
    "finetune_swin3d_t": {
        "model.arch": "swin3d_t",
        "model.weights": "kinetics400",
        "model.drop_path": 0.1,
        "task.label_smoothing": 0.1,
        "task.layer_decay": 0.75,
        "optimizer.lr": 1.0e-4,
        "optimizer.weight_decay": 0.05,
        "scheduler.warmup_epochs": 2,
        "data.frames": 16,
        "data.size": 224,
        "data.batch_size": 8,
        "trainer.accelerator": "gpu",
        "trainer.precision": "bf16-mixed",
        "callbacks.ema.decay": 0.999,
        "views.num_clips": 4,
        "views.crops": 3,
    },
    "finetune_r2plus1d_18": {
        "model.arch": "r2plus1d_18",
        "model.weights": "kinetics400",
        "task.label_smoothing": 0.1,
        "task.layer_decay": 0.6,
        "optimizer._target_": "torch.optim.SGD",
        "optimizer.lr": 0.01,
        "scheduler.warmup_epochs": 1,
        "data.frames": 16,
        "data.size": 112,
        "data.batch_size": 16,
        "trainer.accelerator": "gpu",
        "views.num_clips": 5,
        "views.crops": 1,
    },
}
# The CPU note in each preset's header, without the sizes (the tests pick their own).
ON_CPU = ("trainer=cpu", "trainer.precision=32", "model.weights=none")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_preset_sets_the_recipe_values(compose_train: Callable[..., DictConfig], name: str) -> None:
    cfg = compose_train(f"experiment={name}")
    assert {key: OmegaConf.select(cfg, key) for key in RECIPES[name]} == RECIPES[name]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_warm_up_then_cosine_decay_per_step(
    compose_train: Callable[..., DictConfig], name: str
) -> None:
    recipe = instantiate(compose_train(f"experiment={name}").scheduler)
    assert isinstance(recipe, WarmupCosine) and recipe.interval == "step"


def test_swin_recipe_mixes_pairs_by_mixup_or_cutmix(
    compose_train: Callable[..., DictConfig],
) -> None:
    mix = instantiate(compose_train("experiment=finetune_swin3d_t").mix)
    assert isinstance(mix, MixUpCutMix)
    assert mix.mixup_alpha > 0 and mix.cutmix_alpha > 0 and 0 < mix.switch_prob < 1


def test_swin_recipe_averages_the_weights(compose_train: Callable[..., DictConfig]) -> None:
    callbacks = compose_train("experiment=finetune_swin3d_t").callbacks
    assert isinstance(instantiate(callbacks.ema), ExponentialMovingAverage)
    assert "model_checkpoint" in callbacks  # the default callbacks stay


def test_r2plus1d_recipe_neither_mixes_nor_averages(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("experiment=finetune_r2plus1d_18")
    assert not cfg.mix  # mix=none: an empty node, the task gets mix=None
    assert "ema" not in cfg.callbacks


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_layer_decay_orders_every_layer_of_the_recipe_model(
    compose_train: Callable[..., DictConfig], name: str
) -> None:
    cfg = compose_train(f"experiment={name}", "model.weights=none")
    model = instantiate(cfg.model, num_outputs=3, in_channels=3)
    layering = check_layer_decay(model, cfg.task.layer_decay)
    assert layering is not None and len(layering.layer_of) == len(list(model.parameters()))
    stem = min(layering.layer_of.values())
    assert stem == 0 and layering.num_layers > 1


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_cpu_note_moves_the_run_to_the_cpu_at_full_precision(
    compose_train: Callable[..., DictConfig], name: str
) -> None:
    cfg = compose_train(f"experiment={name}", *ON_CPU)
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.precision == 32


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_preset_trains_one_step_on_the_cpu_and_tests_on_its_views(
    compose_train: Callable[..., DictConfig], demo_videos: Path, name: str
) -> None:
    cfg = compose_train(
        f"experiment={name}",
        "views=uniform",  # the presets' own views group (the small trainings pick views=center)
        *ON_CPU,
        f"data.manifest={demo_videos}",
        "data.frames=2",
        "data.size=16",
        "data.batch_size=2",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
    )
    summary = train(cfg)
    assert summary["status"] == "ok"
    views = summary["test_views"]["views"]
    assert views["crops"] == cfg.views.crops
    assert views["views"]["max"] == cfg.views.num_clips * cfg.views.crops
    assert (summary["weight_averaging"] is not None) == ("ema" in cfg.callbacks)
