"""A resumed run must be the run it continues: same task, classes, preprocessing and model.

Lightning restores the weights and optimiser of any checkpoint whose tensors fit, so a resume
with the classes permuted, another frame size or normalisation, or another task would train on
silently, its targets or inputs no longer meaning what the weights learnt. `ResumeCheck` records
the task class in every checkpoint and, when fit starts from one (before Lightning restores it),
compares the checkpoint's stored task, optimiser and scheduler classes, classes, preprocessing,
model config and the task options that shape the optimiser's parameter groups with the run's.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import WeightAveraging

from vidlearn.errors import ConfigError

TASK_KEY = "vidlearn_task"
# The optimiser and scheduler classes: Lightning loads their saved state into whatever the
# resumed run builds, and AdamW's state in SGD fails with KeyError('momentum').
OPTIMIZER_KEY = "vidlearn_optimizer"
SCHEDULER_KEY = "vidlearn_scheduler"
# Preprocessing entries that change what the weights see (the decoding backend does not).
COMPARED_PREPROCESSING = (
    "modality",
    "size",
    "frames",
    "channels",
    "mean",
    "std",
    "per_frame_max_norm",
    "pad_to_square",
)
# Task options that shape the optimiser's parameter groups, with their defaults (checkpoints from
# before an option read as its default). The saved optimiser state holds the groups and their
# rates: another group count fails inside torch, another scale would be silently ignored.
COMPARED_GROUPING = {"layer_decay": None, "backbone_lr_scale": 1.0, "conv_weight_decay": None}


def task_name(module: pl.LightningModule) -> str:
    """The import path of a task's class, as `task._target_` names it."""
    return f"{type(module).__module__}.{type(module).__qualname__}"


def optimizer_and_scheduler(module: pl.LightningModule) -> tuple[str | None, str | None]:
    """The import paths of a task's optimiser (its partial's function) and scheduler recipe,
    as `optimizer._target_` and `scheduler._target_` name them; None for none."""
    factory = getattr(module, "optimizer_factory", None)
    function = getattr(factory, "func", factory)
    recipe = getattr(module, "scheduler_recipe", None)
    return (
        None if function is None else f"{function.__module__}.{function.__qualname__}",
        None if recipe is None else f"{type(recipe).__module__}.{type(recipe).__qualname__}",
    )


class ResumeCheck(pl.Callback):
    """Store the task class in checkpoints; refuse to resume from one of another run's setup.

    `checkpoint`: the file fit resumes from (None: a new run, nothing to compare).
    """

    def __init__(self, checkpoint: str | None = None) -> None:
        self.checkpoint = checkpoint

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[TASK_KEY] = task_name(pl_module)
        checkpoint[OPTIMIZER_KEY], checkpoint[SCHEDULER_KEY] = optimizer_and_scheduler(pl_module)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.checkpoint:
            return
        saved = torch.load(self.checkpoint, map_location="cpu", weights_only=True, mmap=True)
        averaging = any(isinstance(callback, WeightAveraging) for callback in trainer.callbacks)
        differences = resume_differences(
            saved,
            task_name(pl_module),
            dict(pl_module.hparams),
            averaging,
            *optimizer_and_scheduler(pl_module),
        )
        if differences:
            raise ConfigError(
                f"resume: {self.checkpoint} was trained with another setup: "
                f"{'; '.join(differences)}. Resume with the checkpoint's values, or start a "
                "new run (without resume=) for the new ones."
            )


def resume_differences(
    checkpoint: dict[str, Any],
    task: str,
    hparams: dict[str, Any],
    averaging: bool = False,
    optimizer: str | None = None,
    scheduler: str | None = None,
) -> list[str]:
    """One 'key: checkpoint X, now Y' entry per setting in which `checkpoint` and the run differ.

    `averaging`: the run averages its weights (callbacks=ema). Switched on or off by a resume, the
    run would train on from the checkpoint's average, or start averaging mid-run. `optimizer`,
    `scheduler`: the run's classes (see optimizer_and_scheduler); a checkpoint from before they
    were stored is not compared on them.
    """
    saved = checkpoint.get("hyper_parameters", {})
    pairs = [("task", checkpoint.get(TASK_KEY, task), task)]
    pairs.append(("optimizer", checkpoint.get(OPTIMIZER_KEY, optimizer), optimizer))
    pairs.append(("scheduler", checkpoint.get(SCHEDULER_KEY, scheduler), scheduler))
    pairs.append(("callbacks=ema (averaged weights)", "averaging_state" in checkpoint, averaging))
    pairs.append(("data.classes", list(saved.get("classes", [])), list(hparams.get("classes", []))))
    pairs += [
        (f"task.{key}", _grouping(saved, key), _grouping(hparams, key)) for key in COMPARED_GROUPING
    ]
    saved_pre, pre = saved.get("preprocessing") or {}, hparams.get("preprocessing") or {}
    pairs += [(f"data.{k}", saved_pre.get(k), pre.get(k)) for k in COMPARED_PREPROCESSING]
    saved_model = _flat(saved.get("model_config") or {}, "model.")
    model = _flat(hparams.get("model_config") or {}, "model.")
    pairs += [
        (key, saved_model.get(key), model.get(key))
        for key in sorted({*saved_model, *model})
        if not key.endswith("weights")  # the initial weights: the checkpoint's replace them
    ]
    return [f"{key}: checkpoint {old!r}, now {new!r}" for key, old, new in pairs if old != new]


def _grouping(hparams: dict[str, Any], key: str) -> Any:
    """A grouping option's value, its default when absent; layer_decay 1 is off, as null is."""
    value = hparams.get(key, COMPARED_GROUPING[key])
    return None if key == "layer_decay" and value == 1 else value


def _flat(config: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Nested config entries under dotted keys: {"backbone": {"name": n}} -> {"backbone.name": n}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
