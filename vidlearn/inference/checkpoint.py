"""Load a vidlearn checkpoint for inference, reading plain data only (`weights_only=True`).

A Lightning checkpoint is a pickle; unpickling an untrusted one may run arbitrary code. Only
torch's restricted loader is used here, so a file carrying any other object is refused before
anything in it runs. The network is rebuilt from the `model_config` the task stored (its Hydra
`_target_` and arguments) and given the task's `model.`-prefixed weights.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from vidlearn.errors import UserError

LABEL_KINDS = ("multiclass", "binary", "regression")
REQUIRED_HPARAMS = ("classes", "model_config", "preprocessing")


class CheckpointError(UserError, ValueError):
    """A file cannot be used as a vidlearn checkpoint; the message names the file and the fix."""


@dataclass
class LoadedModel:
    """A trained network in eval mode with everything needed to feed it and read its outputs.

    `preprocessing` holds `size`, `mean`, `std`, `modality` ("video"/"image") and, for videos,
    `frames` and `backend`. `scores` turns logits into what is averaged and reported.
    `averaged_weights`: the run averaged its weights (callbacks=ema) and `model` holds the
    average, the checkpoint's state_dict (the trained weights are its `current_model_state`).
    """

    path: Path
    model: nn.Module
    label_kind: str
    classes: list[str]
    preprocessing: dict[str, Any]
    hparams: dict[str, Any] = field(default_factory=dict)
    averaged_weights: bool = False

    @property
    def modality(self) -> str:
        return str(self.preprocessing.get("modality", "video"))

    @property
    def score_names(self) -> list[str]:
        """Column names of `scores`: one probability per class, or the regressed value."""
        return ["prediction"] if self.label_kind == "regression" else list(self.classes)

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Model input shape: (B, T, C, H, W) for videos, (B, C, H, W) for images."""
        size = int(self.preprocessing["size"])
        image = (input_channels(self.model), size, size)
        if self.modality == "image":
            return (batch, *image)
        return (batch, int(self.preprocessing["frames"]), *image)

    def scores(self, logits: Tensor) -> Tensor:
        """Logits (B, num_outputs) -> (B, S): class probabilities, or values in target units."""
        if self.label_kind == "multiclass":
            return logits.softmax(dim=-1)
        if self.label_kind == "binary":
            positive = logits[:, :1].sigmoid()  # (B, 1)
            return torch.cat([1 - positive, positive], dim=-1)  # (B, 2) in class order
        mean, std = self.target_stats
        return logits[:, :1] * std + mean  # (B, 1)

    @property
    def target_stats(self) -> tuple[float, float]:
        """(mean, std) that undo regression target standardisation; (0, 1) without it."""
        if self.hparams.get("standardize_targets") and self.hparams.get("target_stats"):
            mean, std = self.hparams["target_stats"]
            return float(mean), float(std)
        return 0.0, 1.0

    @property
    def threshold(self) -> float:
        """Probability of the positive class above which a binary prediction is positive."""
        return float(self.hparams.get("threshold", 0.5))


def input_channels(model: nn.Module) -> int:
    """Channels the model's first convolution expects (3 when it has none)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            return int(module.in_channels)
    return 3


def label_kind_of(hparams: Mapping[str, Any]) -> str:
    """Which task wrote the checkpoint, from the arguments only that task has."""
    if "standardize_targets" in hparams:
        return "regression"
    if "threshold" in hparams:
        return "binary"
    return "multiclass"


def without_initial_weights(config: Any) -> Any:
    """A model config with every `weights` argument set to "none", at any depth.

    The checkpoint's state_dict replaces all parameters, so the weights training started from
    (pretrained, or a file on the training machine) are neither downloaded nor read again.
    """
    if isinstance(config, Mapping):
        return {
            key: "none" if key == "weights" else without_initial_weights(value)
            for key, value in config.items()
        }
    if isinstance(config, list | tuple):
        return [without_initial_weights(item) for item in config]
    return config


def num_outputs_of(label_kind: str, classes: list[str]) -> int:
    return len(classes) if label_kind == "multiclass" else 1


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's plain contents via `torch.load(weights_only=True)`; refuses anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"ckpt={path}: no such file; pass a .ckpt from a run's checkpoints/ folder."
        )
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"ckpt={path}: refused to load; it holds objects other than tensors and plain data "
            f"(torch.load weights_only=True: {str(error).splitlines()[0]}). vidlearn checkpoints "
            "never need that: only load checkpoints you trained or trust, re-saved as plain data."
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"ckpt={path}: not a readable torch checkpoint ({error}).") from error
    if not isinstance(contents, Mapping):
        raise CheckpointError(
            f"ckpt={path}: holds a {type(contents).__name__}, not a checkpoint dict."
        )
    return dict(contents)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the network of a vidlearn checkpoint on `device`, in eval mode."""
    path = Path(path).expanduser()
    contents = read_checkpoint(path)
    hparams = contents.get("hyper_parameters")
    missing = [
        key for key in REQUIRED_HPARAMS if not isinstance(hparams, Mapping) or not hparams.get(key)
    ]
    if "classes" in missing and isinstance(hparams, Mapping) and "standardize_targets" in hparams:
        missing.remove("classes")  # regression checkpoints have no classes
    if missing or "state_dict" not in contents:
        raise CheckpointError(
            f"ckpt={path}: not a vidlearn checkpoint (hyper_parameters lacks {missing or 'nothing'}"
            f"{'' if 'state_dict' in contents else ', no state_dict'}); pass a .ckpt written by vidlearn-train."
        )
    classes = list(hparams.get("classes") or [])
    kind = label_kind_of(hparams)
    model = instantiate(
        without_initial_weights(dict(hparams["model_config"])),
        num_outputs=num_outputs_of(kind, classes),
    )
    weights = {
        key.removeprefix("model."): value
        for key, value in contents["state_dict"].items()
        if key.startswith("model.")
    }
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"ckpt={path}: the weights do not fit the network rebuilt from its model_config "
            f"({str(error).splitlines()[0]}); was the model code changed since training?"
        ) from error
    return LoadedModel(
        path=path,
        model=model.to(device).eval(),
        label_kind=kind,
        classes=classes,
        preprocessing=dict(hparams["preprocessing"]),
        hparams=dict(hparams),
        averaged_weights=averaged(contents),
    )


def averaged(contents: Mapping[str, Any]) -> bool:
    """The state_dict is an average of the weights: Lightning's WeightAveraging (callbacks=ema)
    wrote the checkpoint after its first update (before it, the state_dict is the trained one)."""
    count = (contents.get("averaging_state") or {}).get("n_averaged")
    return count is not None and int(count) > 0
