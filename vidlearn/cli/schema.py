"""Type and range checks of the keys every run reads, before anything is built.

Hydra's struct mode already rejects unknown keys (`data.bacth_size=3`); this catches wrong types
(`data.batch_size=abc`, `trainer.max_epochs=1.5`) and values out of range (`data.size=-5`,
`data.val_fraction=1.5`) at start, with the full key in the message, instead of deep inside a
DataLoader or an albumentations validator. Only keys common to every config choice are listed;
a key a config choice lacks (images have no `data.frames`) is not checked.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ValidationError

from vidlearn.cli.config import CONF_DIR
from vidlearn.data.video import BACKENDS
from vidlearn.errors import ConfigError
from vidlearn.inference.export import FORMATS


@dataclass
class TopLevel:
    seed: int
    monitor: str | None
    monitor_mode: str | None
    format: str
    resume: str | None
    test: bool
    channels_last: bool
    compile: bool
    # the tools' own keys (eval, predict, export, cache)
    batch_size: int
    top_k: int
    tolerance: float
    frame_cache_max_gb: float | None
    workers: int
    progress: bool
    splits: list[str]


@dataclass
class Data:
    batch_size: int
    num_workers: int
    size: int
    frames: int
    val_fraction: float
    test_fraction: float
    folds: int | None
    fold: int | None
    max_bad_fraction: float
    probe: bool
    probe_timeout: float | None
    frame_cache_max_gb: float | None
    normalise_on_device: bool
    per_frame_max_norm: bool
    pad_to_square: bool
    allow_outside_root: bool
    backend: str
    mean: list[float] | None
    std: list[float] | None
    channels: int | None


@dataclass
class Trainer:
    max_epochs: int
    num_nodes: int
    deterministic: bool
    use_distributed_sampler: bool
    gradient_clip_val: float | None


@dataclass
class Optimizer:
    lr: float
    weight_decay: float
    momentum: float


@dataclass
class Scheduler:
    """The keys of every scheduler choice (cosine, onecycle, plateau)."""

    warmup_epochs: float
    warmup_start_factor: float
    min_lr_factor: float
    pct_start: float
    div_factor: float
    final_div_factor: float
    factor: float
    patience: int
    min_lr: float


@dataclass
class Task:
    layer_decay: float | None
    label_smoothing: float
    backbone_lr_scale: float
    conv_weight_decay: float | None
    standardize_targets: bool
    pos_weight: Any  # 'balanced' or a number
    class_weights: Any  # 'balanced' or a list of numbers


@dataclass
class Model:
    """Keys several model choices share; the models check their own combinations."""

    in_channels: int | None
    freeze_backbone: bool
    use_mean_pooling: bool
    drop_path: float
    patch_size: int
    tubelet_size: int


@dataclass
class Mix:
    mixup_alpha: float
    cutmix_alpha: float
    prob: float
    switch_prob: float


@dataclass
class Erasing:
    p: float
    area: list[float]
    aspect: list[float]
    value: str
    attempts: int


@dataclass
class Sampler:
    alpha: float
    num_samples: int | None


@dataclass
class Stats:
    group_by: list[str]
    probe: bool
    max_listed: int


SECTIONS: dict[str, type] = {
    "": TopLevel,
    "data": Data,
    "trainer": Trainer,
    "optimizer": Optimizer,
    "scheduler": Scheduler,
    "task": Task,
    "model": Model,
    "mix": Mix,
    "erasing": Erasing,
    "sampler": Sampler,
    "stats": Stats,
}

# A clip this long would not fit in memory anyway (10,000 frames of 112 x 112 RGB: 376 MB).
MAX_FRAMES = 10_000
# OpenCV's resize takes sides below 2**31; no model here wants frames beyond 8K.
MAX_SIZE = 8192

# The sampler holds an epoch's draws as one index array: 10**8 of them take 0.4 to 0.8 GB.
MAX_DRAWS = 10**8

# key -> (is the value allowed, what it must be)
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "seed": (lambda v: 0 <= v < 2**32, "in [0, 2**32), the range numpy's seeding accepts"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "top_k": (lambda v: v >= 1, "at least 1"),
    "tolerance": (lambda v: 0 < v < math.inf, "a positive, finite difference"),
    "frame_cache_max_gb": (
        lambda v: 0 < v < math.inf,
        "a positive size in GB (or null for no limit)",
    ),
    "workers": (lambda v: v >= 0, "0 (decode in this process) or more"),
    "data.batch_size": (lambda v: v >= 1, "at least 1"),
    "data.num_workers": (lambda v: v >= 0, "0 (load in the main process) or more"),
    "data.size": (lambda v: 1 <= v <= MAX_SIZE, f"a frame side in pixels, 1 to {MAX_SIZE:,}"),
    "data.frames": (
        lambda v: 1 <= v <= MAX_FRAMES,
        f"a clip length of 1 to {MAX_FRAMES:,} frames",
    ),
    "data.val_fraction": (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    "data.test_fraction": (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    "data.folds": (lambda v: v >= 2, "at least 2 folds"),
    "data.max_bad_fraction": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    "data.probe_timeout": (
        lambda v: 0 < v < math.inf,
        "seconds above 0 (or null for no deadline)",
    ),
    "data.frame_cache_max_gb": (
        lambda v: 0 < v < math.inf,
        "a positive size in GB (or null for no limit)",
    ),
    "data.mean": (lambda v: len(v) >= 1, "a list of one value per channel (or one for all)"),
    "data.std": (lambda v: len(v) >= 1 and min(v) > 0, "a list of positive values"),
    "data.channels": (lambda v: v >= 1, "a channel count, at least 1 (or null: from the files)"),
    "trainer.max_epochs": (lambda v: v >= 1 or v == -1, "at least 1 (or -1 for no limit)"),
    "trainer.num_nodes": (lambda v: v >= 1, "at least 1"),
    "trainer.gradient_clip_val": (
        lambda v: 0 <= v < math.inf,
        "a gradient norm (or value) of 0 or more; null or 0 for no clipping",
    ),
    "sampler.alpha": (
        lambda v: 0 <= v < math.inf,
        "0 (natural class frequencies) to 1 (equal), or above to favour rare classes more",
    ),
    "sampler.num_samples": (
        lambda v: 1 <= v <= MAX_DRAWS,
        f"draws per epoch, 1 to {MAX_DRAWS:,} (or null: the training split's length)",
    ),
    "stats.max_listed": (lambda v: v >= 0, "0 or more rows"),
    "optimizer.lr": (
        lambda v: 0 <= v < math.inf,
        "a finite learning rate, 0 (weights stay) or more",
    ),
    "optimizer.weight_decay": (lambda v: 0 <= v < math.inf, "finite, 0 (none) or more"),
    "optimizer.momentum": (lambda v: 0 <= v < math.inf, "finite, 0 (none) or more"),
    "scheduler.warmup_epochs": (lambda v: 0 <= v < math.inf, "0 (no warmup) or more epochs"),
    "scheduler.warmup_start_factor": (lambda v: 0 < v <= 1, "a factor of the rate in (0, 1]"),
    "scheduler.min_lr_factor": (lambda v: 0 <= v <= 1, "a factor of the rate in [0, 1]"),
    "scheduler.pct_start": (lambda v: 0 < v < 1, "the share of steps spent rising, in (0, 1)"),
    "scheduler.div_factor": (lambda v: 0 < v < math.inf, "above 0: start rate = lr / div_factor"),
    "scheduler.final_div_factor": (
        lambda v: 0 < v < math.inf,
        "above 0: final rate = start rate / final_div_factor",
    ),
    "scheduler.factor": (lambda v: 0 < v < 1, "in (0, 1): the rate is multiplied by it"),
    "scheduler.patience": (lambda v: v >= 0, "0 or more epochs without improvement"),
    "scheduler.min_lr": (lambda v: 0 <= v < math.inf, "a finite rate, 0 or more"),
    "task.layer_decay": (lambda v: 0 < v <= 1, "in (0, 1], e.g. 0.75 (or null for none)"),
    "task.label_smoothing": (lambda v: 0 <= v < 1, "in [0, 1): 0 is none, 0.1 is common"),
    "task.backbone_lr_scale": (
        lambda v: 0 < v < math.inf,
        "above 0 (to keep the backbone fixed, set model.freeze_backbone=true)",
    ),
    "task.conv_weight_decay": (lambda v: 0 <= v < math.inf, "finite, 0 (none) or more (or null)"),
    "task.pos_weight": (
        lambda v: v == "balanced" or (is_number(v) and 0 < v < math.inf),
        "balanced, a positive number, or null for 1",
    ),
    "task.class_weights": (
        lambda v: (
            v == "balanced"
            or (
                isinstance(v, Sequence)
                and not isinstance(v, str)
                and all(is_number(w) and 0 < w < math.inf for w in v)
            )
        ),
        "balanced, a list of positive numbers (one per class, in class order), or null",
    ),
    "model.in_channels": (lambda v: v >= 1, "a channel count, at least 1 (or null: from the data)"),
    "model.drop_path": (lambda v: 0 <= v < 1, "a probability in [0, 1)"),
    "model.patch_size": (lambda v: v >= 1, "a patch side of at least 1 pixel"),
    "model.tubelet_size": (lambda v: v >= 1, "a tubelet of at least 1 frame"),
    "mix.mixup_alpha": (lambda v: 0 <= v < math.inf, "a Beta parameter >= 0 (0 is off)"),
    "mix.cutmix_alpha": (lambda v: 0 <= v < math.inf, "a Beta parameter >= 0 (0 is off)"),
    "mix.prob": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "mix.switch_prob": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "erasing.p": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "erasing.area": (
        lambda v: len(v) == 2 and 0 < v[0] <= v[1] <= 1,
        "[low, high]: fractions of the frame's area with 0 < low <= high <= 1",
    ),
    "erasing.aspect": (
        lambda v: len(v) == 2 and 0 < v[0] <= v[1] < math.inf,
        "[low, high]: height / width ratios with 0 < low <= high",
    ),
    "erasing.attempts": (lambda v: v >= 1, "at least 1"),
    "monitor_mode": (lambda v: v in ("min", "max"), "min or max (or null for the task's own)"),
    "data.backend": (lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}"),
    "format": (lambda v: v in FORMATS, f"one of {', '.join(FORMATS)}"),
    "splits": (
        lambda v: len(v) >= 1 and set(v) <= {"train", "val", "test"},
        "a list of train, val and/or test",
    ),
}


def is_number(value: object) -> bool:
    """Whether `value` is an int or float (a bool is neither here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value has the wrong type or is out of range."""
    for section, schema in SECTIONS.items():
        node = cfg if not section else cfg.get(section)
        if node is None:
            continue
        typed = OmegaConf.structured(schema)
        for field in fields(schema):
            if field.name not in node:
                continue
            value = node[field.name]
            key = f"{section}.{field.name}" if section else field.name
            try:
                typed[field.name] = value
            except ValidationError as error:
                reason = str(error).splitlines()[0]
                raise ConfigError(f"{key}={value!r} has the wrong type: {reason}") from None
            check = RANGES.get(key)
            if check is not None and value is not None and not check[0](value):
                raise ConfigError(f"{key}={value!r} is out of range: it must be {check[1]}.")
    data = cfg.get("data") or {}
    if data.get("val_fraction", 0) + data.get("test_fraction", 0) >= 1:
        raise ConfigError(
            f"data.val_fraction={data.val_fraction} + data.test_fraction={data.test_fraction} "
            "leave no rows to train on; their sum must be below 1."
        )


def check_added_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """Raise ConfigError for a `+key=value` override that no code reads, with the close match.

    Hydra refuses a misspelt key (`tolerence=1e-3`) and suggests adding it with `+`; a key added
    under a node that is not a constructor's (the top level, `paths`, `stats`) would then be
    ignored, so the run would go on with the default, silently. Keys added under a `_target_`
    node are left to the constructor, which refuses those it does not take.
    """
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        is_group = (CONF_DIR / key.split("@")[0]).is_dir()  # `+views=sliding` adds a group
        if override.type != OverrideType.ADD or key.startswith("hydra.") or is_group:
            continue
        parent, close = closest_sibling(cfg, key)
        if parent is None or "_target_" in parent or isinstance(override.value(), dict):
            continue
        parent_key, _, leaf = key.rpartition(".")
        known = [str(name) for name in parent if name != leaf]
        hint = f"did you mean {close}? Set " if close else "check its spelling, or set "
        where = f"{parent_key}." if parent_key else ""
        raise ConfigError(
            f"{override.input_line}: nothing reads {key}, so the value would be ignored; "
            f"{hint}{where}{close or '<key>'}=... without the '+'. "
            f"Keys there: {', '.join(sorted(known))}."
        )


def closest_sibling(cfg: DictConfig, key: str) -> tuple[DictConfig | None, str | None]:
    """The node of `cfg` that holds `key` (None when it is not a mapping), and the name there
    closest to `key`'s last part other than itself (None when none is close): what a misspelt or
    wrongly added key was probably meant to be."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig):
        return None, None
    known = [str(name) for name in parent if name != leaf]
    close = difflib.get_close_matches(leaf, known, n=1)
    return parent, close[0] if close else None
