"""Weight choices for vidlearn models: pretrained from the torch hub cache, none, or a local file.

Every model with a `weights` argument accepts the same three kinds of value:

- the pretrained name of its family (`"imagenet"` for image backbones, `"kinetics400"` for 3D
  CNNs): torchvision's weights, read from the torch hub cache, and downloaded into it first (as
  torchvision does, with progress) when missing; where the network does not allow that, a
  `WeightsDownloadError` says which file to put where;
- `"none"` (or `None`): random initialisation;
- a path to a `.pt`/`.pth`/`.ckpt` file holding a state_dict of the module that takes the
  `weights` argument (the whole classifier, or just the backbone for a backbone's `weights`),
  e.g. saved with `torch.save(model.state_dict(), path)`, or a Lightning checkpoint of a task.

Weights carry their preprocessing, as timm's pretrained config does: `preprocessing_for` gives
the mean/std that pretrained weights expect their inputs to be normalised with.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import WeightsEnum

from vidlearn.errors import ConfigError, UserError

logger = logging.getLogger(__name__)

NO_WEIGHTS = ("none", "null", "")


class WeightsDownloadError(UserError, FileNotFoundError):
    """Pretrained weights are not in the torch hub cache and could not be downloaded into it."""


@dataclass(frozen=True)
class Preprocessing:
    """Per-channel normalisation `(x - mean) / std` of inputs scaled to [0, 1] that weights expect."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def parse_weights(weights: str | Path | None, pretrained_name: str) -> str | Path | None:
    """Read a `model.weights` value: `pretrained_name`, `None` for random init, or a file Path.

    Raises FileNotFoundError for any other value, since it can only be a mistyped path.
    """
    if weights is None or str(weights).lower() in NO_WEIGHTS:
        return None
    if str(weights) == pretrained_name:
        return pretrained_name
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"model.weights={weights!r} is neither {pretrained_name!r}, 'none' nor an existing "
            f"file; pass model.weights={pretrained_name}, model.weights=none or the path of a "
            "state_dict file (.pt/.pth)."
        )
    return path


def cached_pretrained(weights: WeightsEnum, config_key: str = "model.weights") -> WeightsEnum:
    """Return `weights` once its file is in the torch hub cache, downloading it there if missing.

    The download is torchvision's own: `torch.hub.download_url_to_file` into
    `<torch hub dir>/checkpoints` with a progress bar, checking the SHA-256 prefix that the file
    name carries, and writing a partial file that only a complete download replaces. When it
    fails (no network, an HTTP error, a wrong hash), WeightsDownloadError names `config_key`,
    the URL, and the file and folder to copy the weights into by hand.
    """
    file_name = Path(urlparse(weights.url).path).name
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    target = folder / file_name
    if target.is_file():
        return weights
    hash_match = torch.hub.HASH_REGEX.search(file_name)
    logger.info("downloading %s to %s", weights.url, target)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(
            weights.url, str(target), hash_match.group(1) if hash_match else None, progress=True
        )
    # OSError covers URLError, HTTPError and socket errors; torch.hub raises RuntimeError for a
    # hash mismatch; HTTPException for a connection cut mid-file.
    except (OSError, HTTPException, RuntimeError) as error:
        raise WeightsDownloadError(
            f"{config_key}: pretrained weights {weights} need the file {file_name} in {folder}; "
            f"it is not there and downloading it from {weights.url} failed ({error}). Download "
            f"{file_name} where the network allows and copy it into {folder} (the torch hub "
            f"cache; TORCH_HOME moves it), or pass {config_key}=/path/to/state_dict.pt or "
            f"{config_key}=none."
        ) from error
    return weights


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Read a state_dict from `path`: a plain one, or a dict holding it under "state_dict"/"model".

    Lightning checkpoints of a vidlearn task store the model under the prefix "model."; that
    prefix is removed so the keys match the bare model.
    """
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ConfigError(
            f"{path}: holds Python objects besides tensors, which torch.load(weights_only=True) "
            "refuses (see the chained error); save the weights alone with "
            "torch.save(model.state_dict(), path) and pass that file."
        ) from error
    if not isinstance(content, Mapping):
        raise ConfigError(f"{path}: holds a {type(content).__name__}, not a state_dict mapping.")
    for key in ("state_dict", "model"):
        if isinstance(content.get(key), Mapping):
            content = content[key]
            break
    state_dict = dict(content)
    if state_dict and all(key.startswith("model.") for key in state_dict):
        state_dict = {key.removeprefix("model."): value for key, value in state_dict.items()}
    return state_dict


def load_checked(module: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Copy `state_dict` into `module` after checking that keys and shapes match exactly.

    Raises ValueError listing missing keys, unexpected keys and shape mismatches, with `source`
    (usually the file path) named, so a state_dict of another architecture or class count fails
    before anything is copied.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{key}: file {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    problems = [
        f"{len(items)} {kind} {_first(items)}"
        for kind, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        raise ConfigError(
            f"{source}: state_dict does not fit {type(module).__name__}: {'; '.join(problems)}. "
            "Check that the model config (architecture, num_outputs, in_channels, sizes) is the "
            "one the file was saved from."
        )
    module.load_state_dict(state_dict)


def preprocessing_for(choice: str | Path | None, pretrained: WeightsEnum) -> Preprocessing | None:
    """The normalisation a weights choice requires: the pretrained weights' mean/std, else None.

    None means the weights impose none: random initialisation learns any input scale, and a
    local file was trained with the mean/std its own run recorded (the data config's values).
    """
    if choice is None or isinstance(choice, Path):
        return None
    transform = pretrained.transforms()
    return Preprocessing(mean=tuple(transform.mean), std=tuple(transform.std))


def _first(items: list[str], count: int = 5) -> str:
    shown = ", ".join(items[:count])
    return f"[{shown}{', ...' if len(items) > count else ''}]"
