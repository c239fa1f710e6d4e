"""Every conf/task, conf/optimizer and conf/scheduler entry builds what the task expects."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vidlearn.tasks.base import Task

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _entries(group: str) -> list[Path]:
    return sorted((CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("path", _entries("optimizer"), ids=lambda path: path.stem)
@pytest.mark.parametrize("task_path", _entries("task"), ids=lambda path: path.stem)
def test_task_config_builds_a_task_whose_optimizer_config_fits(path, task_path, tiny_net) -> None:
    task_cfg = OmegaConf.load(task_path)
    classes = ["a", "b"] if task_path.stem != "regression" else []
    num_outputs = 2 if task_path.stem == "multiclass" else 1
    task = instantiate(
        task_cfg,
        model=tiny_net(num_outputs),
        classes=classes,
        optimizer=instantiate(OmegaConf.load(path)),
    )
    assert isinstance(task, Task)
    assert len(task.configure_optimizers().param_groups) == 4  # backbone/head x decay/no decay


@pytest.mark.parametrize("path", _entries("scheduler"), ids=lambda path: path.stem)
def test_scheduler_config_is_empty_or_a_recipe_with_interval_and_build(path) -> None:
    cfg = OmegaConf.load(path)
    if path.stem == "none":
        assert not cfg  # the CLI passes scheduler=None for an empty node
        return
    recipe = instantiate(cfg)
    assert recipe.interval in ("epoch", "step")
    assert callable(recipe.build)
