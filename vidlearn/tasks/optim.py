"""Optimiser parameter groups and learning-rate schedule recipes for the tasks.

`parameter_groups` splits a model's parameters by weight decay and learning rate. A schedule
recipe (`WarmupCosine`, `OneCycle`, `Plateau`) is a small config object built by Hydra from
`conf/scheduler/*.yaml`; the task calls `recipe.build(optimizer, total_steps, total_epochs)` once
the trainer knows the length of training, and hands Lightning the result with
`recipe.interval` ("epoch" or "step") and `recipe.monitor` (the metric a plateau schedule reads).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Protocol

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from vidlearn.errors import ConfigError
from vidlearn.models.layers import Layering, layer_ids

INTERVALS = ("epoch", "step")


# Words in a parameter's own name that mark a position table or a learned token (class, mask):
# Swin `relative_position_bias_table`, MViT `class_token` / `spatial_pos` / `rel_pos_h`, Hugging
# Face `cls_token` / `position_embeddings` / `time_embeddings`, timm `pos_embed`. Only parameters
# registered directly under such a name carry it: a conv or linear weight is named `weight`.
TABLE_WORDS = frozenset({"pos", "position", "embed", "embeddings", "token"})


def is_table(name: str, owner: nn.Module) -> bool:
    """Whether the parameter `name` of module `owner` is an embedding, position table or token.

    Such tables are looked up or added, not multiplied: weight decay only pulls them to zero
    (BEiT, MAE and timm exclude them likewise). `name` is the attribute name within `owner`.
    """
    return isinstance(owner, nn.Embedding) or not TABLE_WORDS.isdisjoint(name.split("_"))


def layer_decay_scale(layer: int, num_layers: int, decay: float) -> float:
    """Learning-rate factor of layer `layer` of `num_layers`: decay ** (num_layers - layer)."""
    return decay ** (num_layers - layer)


def parameter_groups(
    model: nn.Module,
    backbone_lr_scale: float = 1.0,
    conv_weight_decay: float | None = None,
    layer_decay: float | None = None,
) -> list[dict[str, object]]:
    """Group `model`'s parameters for the optimiser; each group has `name`, `params`, `lr_scale`.

    - Vectors (biases, norm scales and shifts: every parameter with ndim <= 1) and embedding,
      position and token tables (`is_table`) get `weight_decay=0`: decaying them only shrinks
      the model's freedom to shift and scale, or pulls lookups towards zero.
    - With `conv_weight_decay` set, convolution weights get that decay and other matrices keep
      the optimiser's default (the cardiac recipe: L2 1e-3 on convolution weights only).
    - Parameters under `model.backbone` get `lr_scale=backbone_lr_scale`; the task multiplies
      each group's learning rate by its `lr_scale` after building the optimiser.
    - `layer_decay` d in (0, 1) multiplies the scale of a parameter at layer k of L by
      d ** (L - k) (`vidlearn.models.layers.layer_ids`: stem 0, head L); None or 1 is off.
      Groups are then split by layer too, e.g. "backbone/layer3/no_decay".

    Frozen parameters (requires_grad False) are included so that unfreezing the backbone later
    needs no new groups; the optimiser skips them while they have no gradient.
    """
    backbone = getattr(model, "backbone", None)
    backbone_ids = (
        {id(p) for p in backbone.parameters()} if isinstance(backbone, nn.Module) else set()
    )
    conv_ids = set()
    if conv_weight_decay is not None:
        conv_ids = {
            id(module.weight)
            for module in model.modules()
            if isinstance(module, nn.modules.conv._ConvNd)
        }
    layering = check_layer_decay(model, layer_decay)

    groups: dict[str, dict[str, object]] = {}
    seen: set[int] = set()
    for owner in model.modules():
        for attribute, parameter in owner.named_parameters(recurse=False):
            if id(parameter) in seen:  # shared between modules: one group only
                continue
            seen.add(id(parameter))
            part, lr_scale = (
                ("backbone", backbone_lr_scale) if id(parameter) in backbone_ids else ("head", 1.0)
            )
            if parameter.ndim <= 1 or is_table(attribute, owner):
                kind, decay = "no_decay", {"weight_decay": 0.0}
            elif id(parameter) in conv_ids:
                kind, decay = "conv", {"weight_decay": conv_weight_decay}
            else:
                kind, decay = "default", {}
            segments = [part, kind]
            if layering is not None:
                layer = layering.layer_of[id(parameter)]
                lr_scale *= layer_decay_scale(layer, layering.num_layers, layer_decay)
                # a model without a backbone has no backbone/head split to show
                segments = (
                    [part, f"layer{layer}", kind] if backbone_ids else [f"layer{layer}", kind]
                )
            name = "/".join(segments)
            group = groups.setdefault(
                name, {"name": name, "params": [], "lr_scale": lr_scale, **decay}
            )
            group["params"].append(parameter)
    return list(groups.values())


def check_layer_decay(model: nn.Module, layer_decay: float | None) -> Layering | None:
    """The model's layer ids when `layer_decay` is on (None when off, i.e. None or 1).

    Raises ConfigError, naming task.layer_decay, for a value outside (0, 1] or a model whose
    layers `vidlearn.models.layers.layer_ids` cannot order.
    """
    if layer_decay is None or layer_decay == 1:
        return None
    if not 0 < layer_decay < 1:
        raise ConfigError(
            f"task.layer_decay={layer_decay} must be in (0, 1] (e.g. 0.75; each layer's rate "
            "is that times the next one's), or null for no layer decay."
        )
    layering = layer_ids(model)
    if layering is None:
        raise ConfigError(
            f"task.layer_decay={layer_decay} needs a model whose layers vidlearn can order "
            "(ResNet stages, MobileNetV2 blocks, Swin, MViT or Hugging Face encoder blocks), "
            f"and {type(model).__name__} has none of them; set task.layer_decay=null, or pick "
            "such a model (e.g. model=r3d_18)."
        )
    return layering


class SchedulerRecipe(Protocol):
    """What a task needs from a `conf/scheduler` entry."""

    interval: str  # "epoch" or "step": when Lightning calls scheduler.step()
    monitor: str | None  # the logged metric passed to scheduler.step(), for plateau schedules
    needs_horizon: bool  # decays over a known number of steps, so needs trainer.max_epochs

    def build(
        self, optimizer: Optimizer, total_steps: int, total_epochs: int
    ) -> LRScheduler | ReduceLROnPlateau: ...


def warmup_cosine_factor(
    step: int, warmup: int, total: int, start_factor: float, min_factor: float
) -> float:
    """Learning-rate multiplier at `step`: linear from `start_factor` to 1 over `warmup` steps,
    then a half cosine from 1 down to `min_factor` at `total` steps (held there afterwards)."""
    if step < warmup:
        return start_factor + (1.0 - start_factor) * step / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine:
    """Linear warmup over `warmup_epochs`, then cosine decay to `min_lr_factor` x lr at the end.

    `interval="step"` updates the rate every optimiser step (warmup_epochs may be fractional);
    `"epoch"` once per epoch. Factors are relative to each group's own learning rate, so a
    lower backbone rate keeps its ratio to the head's throughout.
    """

    monitor = None
    needs_horizon = True

    def __init__(
        self,
        warmup_epochs: float = 0.0,
        interval: str = "epoch",
        warmup_start_factor: float = 0.01,
        min_lr_factor: float = 0.0,
    ) -> None:
        if interval not in INTERVALS:
            raise ConfigError(
                f"scheduler.interval={interval!r} must be one of {', '.join(INTERVALS)}."
            )
        if warmup_epochs < 0 or not 0 < warmup_start_factor <= 1 or not 0 <= min_lr_factor <= 1:
            raise ConfigError(
                f"scheduler: need warmup_epochs >= 0, 0 < warmup_start_factor <= 1 and "
                f"0 <= min_lr_factor <= 1; got {warmup_epochs}, {warmup_start_factor}, "
                f"{min_lr_factor}. Fix the scheduler config."
            )
        self.warmup_epochs = warmup_epochs
        self.interval = interval
        self.warmup_start_factor = warmup_start_factor
        self.min_lr_factor = min_lr_factor

    def build(self, optimizer: Optimizer, total_steps: int, total_epochs: int) -> LambdaLR:
        """A LambdaLR over `total_epochs` epochs or `total_steps` steps, by `interval`."""
        if total_epochs < 1:
            raise ConfigError(
                "the warmup + cosine schedule needs the number of epochs; set trainer.max_epochs."
            )
        if self.interval == "epoch":
            total, warmup = total_epochs, round(self.warmup_epochs)
        else:
            total, warmup = total_steps, round(self.warmup_epochs * total_steps / total_epochs)
        factor = partial(
            warmup_cosine_factor,
            warmup=warmup,
            total=total,
            start_factor=self.warmup_start_factor,
            min_factor=self.min_lr_factor,
        )
        return LambdaLR(optimizer, factor)


class OneCycle:
    """torch's OneCycleLR, stepped every optimiser step, peaking at each group's learning rate."""

    interval = "step"
    monitor = None
    needs_horizon = True

    def __init__(
        self, pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4
    ) -> None:
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor

    def build(self, optimizer: Optimizer, total_steps: int, total_epochs: int) -> OneCycleLR:
        """A OneCycleLR over `total_steps`; `total_epochs` is not needed."""
        return OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total_steps,
            pct_start=self.pct_start,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
        )


# The checkpoint entry holding the length ({"epochs": E, "steps": S}) a decaying schedule spans.
HORIZON_KEY = "schedule_horizon"


def check_resumed_horizon(
    saved: dict[str, int], now: dict[str, int], recipe: SchedulerRecipe
) -> None:
    """Refuse to resume a decaying schedule over another length than the checkpoint's.

    A cosine or one-cycle schedule is a curve over the whole run, fixed when it starts: by the
    end of the planned epochs the rate has decayed to its minimum. A resume with another
    trainer.max_epochs cannot extend it faithfully: Lightning restores the saved scheduler, so
    OneCycleLR keeps its saved step count and fails past it, and a warmup + cosine rebuilt for the
    new length jumps to another point of its curve (timm's train.py rebuilds its cosine for a new
    --epochs likewise: the rate rises again mid-run). Neither is the schedule a run of the new
    length would have had from its start, so the resume is refused with the ways out (ConfigError
    naming trainer.max_epochs). `saved` and `now` are {"epochs", "steps"}; steps matter only to a
    schedule stepped every optimiser step.
    """
    name = type(recipe).__name__
    if saved["epochs"] != now["epochs"]:
        raise ConfigError(
            f"trainer.max_epochs={now['epochs']}, but the checkpoint resumed from planned its "
            f"{name} schedule over trainer.max_epochs={saved['epochs']}, and a decaying "
            "schedule's length is fixed when the run starts. Resume with "
            f"trainer.max_epochs={saved['epochs']}; "
            "to train longer, start a new run (without resume=) with the longer schedule, from "
            "the checkpoint's weights where the model takes them (model.weights=<checkpoint>)."
        )
    if recipe.interval == "step" and saved["steps"] != now["steps"]:
        raise ConfigError(
            f"resume: the checkpoint's {name} schedule spans {saved['steps']} optimiser steps "
            f"over trainer.max_epochs={saved['epochs']}, this run {now['steps']}: the training "
            "batches per epoch changed (data.batch_size, trainer.accumulate_grad_batches, "
            "trainer.limit_train_batches, the number of devices or the training rows). Resume "
            "with the checkpoint's values, or start a new run (without resume=) for the new ones."
        )


class Plateau:
    """torch's ReduceLROnPlateau on a logged metric (`monitor`), checked once per epoch."""

    interval = "epoch"
    needs_horizon = False

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        min_lr: float = 0.0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ConfigError(f"scheduler.mode={mode!r} must be 'min' or 'max'.")
        self.monitor = monitor
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr

    def build(self, optimizer: Optimizer, total_steps: int, total_epochs: int) -> ReduceLROnPlateau:
        """A ReduceLROnPlateau; the length of training is not needed."""
        return ReduceLROnPlateau(
            optimizer,
            mode=self.mode,
            factor=self.factor,
            patience=self.patience,
            min_lr=self.min_lr,
        )
