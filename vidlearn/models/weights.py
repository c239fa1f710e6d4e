"""Weight choices for vidlearn models: pretrained from the torch hub cache, none, or a local file.

Every model with a `weights` argument accepts the same three kinds of value:

- the pretrained name of its family (`"imagenet"` for image backbones, `"kinetics400"` for 3D
  CNNs): torchvision's weights, read from the torch hub cache, and downloaded into it first (as
  torchvision does, with progress) when missing; where the network does not allow that, a
  `WeightsDownloadError` says which file to put where. The torchvision video models and
  MobileNetV2 also take the names of torchvision's weights enum (`choose_weights`:
  `KINETICS400_IMAGENET22K_V1` for swin3d_b);
- `"none"` (or `None`): random initialisation;
- a path to a `.pt`/`.pth`/`.ckpt` file holding a state_dict of the module that takes the
  `weights` argument (the whole classifier, or just the backbone for a backbone's `weights`),
  e.g. saved with `torch.save(model.state_dict(), path)`, or a Lightning checkpoint of a task.
  For the torchvision video models and MobileNetV2 it may also be torchvision's own file of the
  network (`WeightsFile`), e.g. `r2plus1d_18-91a641e6.pth` downloaded by hand from its URL.

Weights carry their preprocessing, as timm's pretrained config does: `weights_preprocessing` gives
the mean/std that pretrained weights expect their inputs to be normalised with.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import pickletools
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import WeightsEnum, get_model, get_model_weights

from vidlearn.errors import ConfigError, UserError

logger = logging.getLogger(__name__)

NO_WEIGHTS = ("none", "null", "")

# What to check when a state_dict does not fit: a file of the vidlearn model, or torchvision's
# own file of the network (formatted with the network's name).
_MODEL_HINT = (
    "Check that the model config (architecture, num_outputs, in_channels, sizes) is the one the "
    "file was saved from."
)
_TORCHVISION_HINT = (
    "Its keys are closest to torchvision's own {} as its weights files hold it: check that the "
    "file holds that network as torchvision builds it (its own classifier included), or choose "
    "the model config of the architecture the file holds."
)

# First bytes of files passed as weights by mistake, and what to call them.
_MAGIC = (
    (b"\x93NUMPY", "a NumPy array (.npy)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras or h5py weights)"),
)


class WeightsDownloadError(UserError, FileNotFoundError):
    """Pretrained weights are not in the torch hub cache and could not be downloaded into it."""


@dataclass(frozen=True)
class Preprocessing:
    """Per-channel normalisation `(x - mean) / std` of inputs scaled to [0, 1] that weights expect."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def parse_weights(weights: str | Path | None, pretrained_name: str) -> str | Path | None:
    """Read a `model.weights` value: `pretrained_name`, `None` for random init, or a file Path.

    Raises ConfigError naming `model.weights` for any other value, since it can only be a
    mistyped path or a missing file.
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


def choose_weights(
    weights: str | Path | None,
    family: type[WeightsEnum],
    aliases: Mapping[str, str],
    config_key: str = "model.weights",
) -> WeightsEnum | Path | None:
    """Read the `weights` value of a torchvision model: its weights, None or a file Path.

    Weights are named by an alias (`aliases`, e.g. {"kinetics400": "KINETICS400_V1"}) or by a
    member of torchvision's `family` enum, as torchvision writes it, in any case, with or
    without the enum's name before it (`KINETICS400_IMAGENET22K_V1`,
    `Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1`). Any other value that is not an existing file
    is a ConfigError naming `config_key` and listing the names.
    """
    if weights is None or str(weights).lower() in NO_WEIGHTS:
        return None
    names: dict[str, WeightsEnum] = {alias: family[target] for alias, target in aliases.items()}
    names.update(family.__members__)
    by_lower = {name.lower(): member for name, member in names.items()}
    wanted = str(weights).lower().removeprefix(f"{family.__name__.lower()}.")
    if wanted in by_lower:
        return by_lower[wanted]
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{config_key}={weights!r} is neither one of the weights torchvision has for this "
            f"model ({', '.join(names)}), 'none' nor an existing file; pass one of those names, "
            f"{config_key}=none or the path of a state_dict file (.pt/.pth, torchvision's own "
            "weights files included)."
        )
    return path


def named_weights(path: Path, family: type[WeightsEnum]) -> WeightsEnum | None:
    """The member of `family` whose file `path` is named as (torchvision names each weights file
    `<arch>-<hash>.pth` in its URL), or None."""
    return next(
        (member for member in family if Path(urlparse(member.url).path).name == path.name), None
    )


def weights_preprocessing(
    choice: WeightsEnum | Path | None, family: type[WeightsEnum]
) -> Preprocessing | None:
    """The normalisation a `choose_weights` choice requires: torchvision's weights' mean/std, also
    for a file named as one of their files; None for random initialisation or another file
    (trained with the mean/std its own run recorded, the data config's values)."""
    if isinstance(choice, Path):
        choice = named_weights(choice, family)
    return None if choice is None else preprocessing_of(choice)


class WeightsFile:
    """A state_dict file given as `weights` to a model built on a torchvision network: either
    torchvision's own file of that network (the file its weights URL gives, or a state_dict of
    the network as torchvision builds it) or a state_dict of the whole vidlearn model.

    The model calls `load_torchvision(net, name)` on the network as torchvision built it, before
    replacing its head or adapting its stem, then `load_model(self)` once built: a file with
    exactly the network's keys is loaded by the first, any other file by the second. Either
    checks every key and shape first; when a file fits neither, the error names the file and the
    keys that differ from the layout it is closer to.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state_dict = read_state_dict(path)
        self.loaded = False
        self._name = ""  # torchvision's network, and the shapes of its state_dict
        self._torchvision: dict[str, torch.Size] = {}

    def load_torchvision(self, net: nn.Module, name: str) -> None:
        """Load the file into torchvision's `name` network `net` when its keys are `net`'s."""
        self._name, self._torchvision = name, _shapes(net)
        if set(self.state_dict) == set(self._torchvision):
            self._check_torchvision()
            net.load_state_dict(self.state_dict)
            self.loaded = True

    def load_model(self, model: nn.Module) -> None:
        """Load the file into the whole `model`, unless `load_torchvision` did."""
        if self.loaded:
            return
        keys = set(self.state_dict)
        if len(keys & set(self._torchvision)) > len(keys & set(model.state_dict())):
            self._check_torchvision()  # raises: its keys differ from the network's
        load_checked(model, self.state_dict, str(self.path))
        self.loaded = True

    def _check_torchvision(self) -> None:
        target = f"torchvision's {self._name}"
        hint = _TORCHVISION_HINT.format(self._name)
        _check_fits(self._torchvision, self.state_dict, str(self.path), target, hint)


@dataclass
class TorchvisionNet:
    """torchvision's network `net` with the weights a `weights` value chose, the normalisation
    they require (`preprocessing`, None for none or another file), and the state_dict `file` to
    load into the finished model (`file.load_model`), when `weights` named one."""

    net: nn.Module
    preprocessing: Preprocessing | None
    file: WeightsFile | None


def build_torchvision(
    name: str, weights: str | Path | None, aliases: Mapping[str, str], config_key: str
) -> TorchvisionNet:
    """torchvision's `name` network built with the weights `weights` chooses (`choose_weights`):
    torchvision's, fetched into the hub cache; none; or a file, of which torchvision's own file
    of the network is loaded now, before the caller replaces its head or adapts its stem."""
    family = get_model_weights(name)
    choice = choose_weights(weights, family, aliases, config_key)
    pretrained = cached_pretrained(choice, config_key) if isinstance(choice, WeightsEnum) else None
    net = get_model(name, weights=pretrained)
    file = WeightsFile(choice) if isinstance(choice, Path) else None
    if file is not None:
        file.load_torchvision(net, name)
    return TorchvisionNet(net, weights_preprocessing(choice, family), file)


def pretrained_choice(
    name: str, weights: str | Path | None, aliases: Mapping[str, str], config_key: str
) -> WeightsEnum | None:
    """The torchvision weights of `name` that `weights` loads, or None for none or a file."""
    choice = choose_weights(weights, get_model_weights(name), aliases, config_key)
    return choice if isinstance(choice, WeightsEnum) else None


def file_preprocessing(
    name: str, weights: str | Path | None, aliases: Mapping[str, str], config_key: str
) -> Preprocessing | None:
    """The mean/std of torchvision's weights of `name` that a file path names (a file
    downloaded by hand keeps torchvision's name); None for anything else."""
    family = get_model_weights(name)
    choice = choose_weights(weights, family, aliases, config_key)
    return weights_preprocessing(choice, family) if isinstance(choice, Path) else None


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
    prefix is removed so the keys match the bare model, and the task's own entries (a loss
    weight: `criterion.pos_weight`) are left out. A model saved while wrapped in DDP keeps
    its "module." prefix on every key, which is removed too.
    """
    kind = _kind_of_other_file(path)
    if kind is not None:
        raise ConfigError(_not_a_state_dict(path, f"is {kind}"))
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ConfigError(
            f"{path}: holds Python objects besides tensors, which torch.load(weights_only=True) "
            "refuses (see the chained error); save the weights alone with "
            "torch.save(model.state_dict(), path) and pass that file."
        ) from error
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as error:
        raise ConfigError(
            _not_a_state_dict(path, f"is not a file torch.load reads ({error})")
        ) from error
    if not isinstance(content, Mapping):
        raise ConfigError(_not_a_state_dict(path, f"holds a {type(content).__name__}"))
    lightning = "pytorch-lightning_version" in content
    for key in ("state_dict", "model"):
        if isinstance(content.get(key), Mapping):
            content = content[key]
            break
    state_dict = dict(content)
    if lightning and any(key.startswith("model.") for key in state_dict):
        state_dict = {key: value for key, value in state_dict.items() if key.startswith("model.")}
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise ConfigError(
                _not_a_state_dict(
                    path, f"holds a dict whose {key!r} holds a {type(value).__name__}"
                )
            )
    for prefix in ("model.", "module."):
        if state_dict and all(key.startswith(prefix) for key in state_dict):
            state_dict = {key.removeprefix(prefix): value for key, value in state_dict.items()}
    return state_dict


def _legacy_torch_protocol(head: bytes) -> int | None:
    """The pickle protocol of a torch.save file in the format before zip (torch < 1.6, or
    _use_new_zipfile_serialization=False), which opens with a pickled magic number; None when
    `head` does not open so. Reads opcodes only: nothing of the file is unpickled."""
    protocol = 0
    try:
        for opcode, argument, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name == "PROTO":
                protocol = argument
            elif opcode.name != "FRAME":
                return protocol if argument == torch.serialization.MAGIC_NUMBER else None
    except (ValueError, EOFError):  # the head cuts an opcode short, or is not a pickle
        pass
    return None


def _kind_of_other_file(path: Path) -> str | None:
    """What `path` holds, by its first bytes, when torch.save plainly did not write it; else None."""
    with path.open("rb") as file:
        head = file.read(64)
    if not head:
        return "an empty file (0 bytes)"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(name.endswith("/data.pkl") for name in names):  # torch.save's own layout
            return None
        if names and all(name.endswith(".npy") for name in names):
            return "a NumPy .npz archive"
        return "a zip archive that is not a PyTorch checkpoint (it has no data.pkl)"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"\x80"):  # a pickle
        protocol = _legacy_torch_protocol(head)
        if protocol is None:
            return "a Python pickle, not torch.save's"
        if protocol >= 4:  # torch's weights-only unpickler has no FRAME opcode
            return (
                f"a torch.save file in the format before zip with pickle protocol {protocol}, "
                "which torch.load(weights_only=True) cannot read"
            )
    if head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size:
        return "a safetensors file (read it with safetensors.torch.load_file)"
    if head.lstrip()[:1] in (b"{", b"[") and _is_json(path):
        return "a JSON file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "a text file"


def _is_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False
    return True


def _not_a_state_dict(path: Path, what: str) -> str:
    return (
        f"{path}: {what}, not a PyTorch state_dict. vidlearn reads weights saved with "
        "torch.save(model.state_dict(), path) (a .pt/.pth file) or a vidlearn run's .ckpt; "
        "save the weights that way and pass that file."
    )


def load_checked(module: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Copy `state_dict` into `module` after checking that keys and shapes match exactly.

    Raises ValueError listing missing keys, unexpected keys and shape mismatches, with `source`
    (usually the file path) named, so a state_dict of another architecture or class count fails
    before anything is copied.
    """
    _check_fits(_shapes(module), state_dict, source, type(module).__name__, _MODEL_HINT)
    module.load_state_dict(state_dict)


def _shapes(module: nn.Module) -> dict[str, torch.Size]:
    return {key: value.shape for key, value in module.state_dict().items()}


def _check_fits(
    expected: Mapping[str, torch.Size],
    state_dict: Mapping[str, Tensor],
    source: str,
    target: str,
    hint: str,
) -> None:
    """ConfigError naming `source`, `target` and the missing, unexpected and mismatched keys
    when `state_dict` does not have exactly the keys and shapes `expected`."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{key}: file {tuple(state_dict[key].shape)} vs model {tuple(expected[key])}"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key]
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
            f"{source}: state_dict does not fit {target}: {'; '.join(problems)}. {hint}"
        )


def preprocessing_of(pretrained: WeightsEnum) -> Preprocessing:
    """The mean/std that torchvision's `pretrained` weights were trained with (no download)."""
    transform = pretrained.transforms()
    return Preprocessing(mean=tuple(transform.mean), std=tuple(transform.std))


def _first(items: list[str], count: int = 5) -> str:
    shown = ", ".join(items[:count])
    return f"[{shown}{', ...' if len(items) > count else ''}]"
