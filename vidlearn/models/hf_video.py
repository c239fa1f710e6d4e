"""Hugging Face transformers video transformers, VideoMAE and TimeSformer, with a new output layer.

An optional extra (`pip install 'vidlearn[hf]'`): the backbone is transformers' own
`VideoMAEModel` / `TimesformerModel`, the head is vidlearn's, so every task, tool, export and
checkpoint treats them as any other `(B, T, C, H, W) -> (B, num_outputs)` model.

`weights` is one of:

- `"none"`: random initialisation, sized by the constructor arguments;
- a folder written by `save_pretrained` (config.json + weights);
- a Hugging Face hub id (`MCG-NJU/videomae-base`), read from the local Hugging Face cache only
  (`local_files_only`: nothing is downloaded; a missing id names the cache and how to fill it).

The architecture arguments must equal the weights' config.json, so that a checkpoint, which
vidlearn rebuilds with `weights="none"` (`vidlearn.inference.checkpoint`), gets the same network.
Both families take clips of exactly `num_frames` x `size` x `size` (`input_limits`; the presets
interpolate the data's): VideoMAE's sinusoid position table is computed for them, and
TimeSformer's blocks reshape tokens by the config's num_frames and image_size (its embeddings'
own run-time resize of the tables does not reach the blocks, so another clip size would be
mis-grouped silently). With weights, VideoMAE's table is recomputed and TimeSformer's learned
tables are resampled (nearest, as transformers resizes them) to the data's clip size; another
channel count adapts the patch-embedding conv.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn
from torch.nn import functional
from torchvision.ops import StochasticDepth

from vidlearn.errors import ConfigError, UserError
from vidlearn.models.input_conv import adapt_first_conv
from vidlearn.models.limits import InputLimits
from vidlearn.models.weights import NO_WEIGHTS, Preprocessing, load_checked

INSTALL = "pip install 'vidlearn[hf]'"
# Config keys saved under another name by older transformers: VideoMAE's qv_bias was qkv_bias.
ALIASES = {"qv_bias": "qkv_bias"}
# The image processor's settings file: image processors (transformers 4) and video processors (5).
PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")


def import_transformers() -> ModuleType:
    """The transformers package, or a UserError saying how to install the extra."""
    try:
        import transformers
    except ImportError as error:
        raise UserError(
            "The Hugging Face video models (model=videomae, model=timesformer) need the "
            f"transformers package, which is not installed ({error}); install it with {INSTALL}, "
            "or pick another model."
        ) from error
    return transformers


def resolve_weights(weights: str | Path | None) -> Path | None:
    """The folder `weights` names: None for none, a local folder, or a hub id's cached snapshot.

    Raises ConfigError for a file (these models read save_pretrained folders) and UserError for
    a hub id that is not in the local Hugging Face cache, naming the cache and how to fill it.
    """
    if weights is None or str(weights).lower() in NO_WEIGHTS:
        return None
    path = Path(weights).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        raise ConfigError(
            f"model.weights={weights!r} is a file; the Hugging Face video models read a folder "
            "written by save_pretrained (config.json + weights), a hub id in the local Hugging "
            "Face cache, or none."
        )
    import_transformers()
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HFValidationError, LocalEntryNotFoundError

    cache = hub_cache()
    try:
        return Path(snapshot_download(str(weights), cache_dir=cache, local_files_only=True))
    except HFValidationError as error:
        raise ConfigError(
            f"model.weights={weights!r} is neither an existing folder nor a Hugging Face hub id "
            f"({error}); pass a folder written by save_pretrained, a hub id such as "
            "MCG-NJU/videomae-base, or none."
        ) from error
    # FileNotFoundError: huggingface_hub before 0.13 for a repo missing from the cache
    except (LocalEntryNotFoundError, FileNotFoundError) as error:
        raise UserError(
            f"model.weights={weights!r}: this Hugging Face hub id is not in the local Hugging "
            f"Face cache ({cache}), and vidlearn never downloads from the hub. "
            f"On a machine with network run `hf download {weights}` (huggingface-cli download "
            "in older huggingface_hub) and copy the cache folder here, or point HF_HOME at a "
            "cache that holds it, or pass a folder written by save_pretrained, or none."
        ) from error


def hub_cache() -> str:
    """The Hugging Face hub cache folder (HF_HUB_CACHE, or HF_HOME/hub)."""
    from huggingface_hub import constants

    # HUGGINGFACE_HUB_CACHE: the name before huggingface_hub 0.16
    return getattr(constants, "HF_HUB_CACHE", None) or constants.HUGGINGFACE_HUB_CACHE


def read_folder_config(folder: Path, model_type: str) -> dict[str, object]:
    """The config.json of `folder`, checked to be of `model_type`."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ConfigError(
            f"model.weights={str(folder)!r} has no config.json; pass a folder written by "
            "save_pretrained."
        )
    config = json.loads(config_file.read_text())
    if config.get("model_type") != model_type:
        raise ConfigError(
            f"model.weights={str(folder)!r}: config.json is of model_type "
            f"{config.get('model_type')!r}, but this model is {model_type!r}; pass "
            f"{model_type} weights or pick the model preset of that type."
        )
    return config


def folder_preprocessing(
    folder: Path, default_mean: tuple[float, ...], default_std: tuple[float, ...]
) -> Preprocessing:
    """The image processor's mean/std saved beside the weights, else the family's defaults."""
    for name in PROCESSOR_FILES:
        settings_file = folder / name
        if settings_file.is_file():
            settings = json.loads(settings_file.read_text())
            if "image_mean" in settings and "image_std" in settings:
                return Preprocessing(
                    mean=tuple(map(float, settings["image_mean"])),
                    std=tuple(map(float, settings["image_std"])),
                )
    return Preprocessing(mean=tuple(default_mean), std=tuple(default_std))


def check_architecture(
    folder: Path, config: dict[str, object], wanted: dict[str, object], exposed: tuple[str, ...]
) -> None:
    """Refuse weights whose config.json differs from `wanted` in any architecture key."""
    problems = []
    for key, value in wanted.items():
        found = config.get(key, config.get(ALIASES.get(key, key), value))
        if isinstance(found, list):  # patch_size may be saved as [16, 16]
            found = found[0] if len(set(found)) == 1 else tuple(found)
        if found != value:
            fix = f"set model.{key}={found}" if key in exposed else "vidlearn cannot rebuild it"
            problems.append(f"{key}={found!r} in config.json, {value!r} here ({fix})")
    if problems:
        raise ConfigError(
            f"model.weights={str(folder)!r} does not have this model's architecture: "
            f"{'; '.join(problems)}."
        )


def resample_tables(state: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
    """TimeSformer's learned position and time tables of `state` resized to `target`'s shapes.

    Nearest-neighbour, the mode `TimesformerEmbeddings.forward` resizes them with at run time.
    """
    resized = dict(state)
    key = "embeddings.position_embeddings"  # (1, 1 + g * g, D): CLS then a g x g grid
    if state[key].shape != target[key].shape:
        table, (_, length, dim) = state[key], target[key].shape
        grid, new_grid = int((table.shape[1] - 1) ** 0.5), int((length - 1) ** 0.5)
        patches = table[:, 1:].transpose(1, 2).reshape(1, dim, grid, grid)
        patches = functional.interpolate(patches, size=(new_grid, new_grid), mode="nearest")
        resized[key] = torch.cat([table[:, :1], patches.flatten(2).transpose(1, 2)], dim=1)
    key = "embeddings.time_embeddings"  # (1, T, D)
    if key in state and state[key].shape != target[key].shape:
        times = functional.interpolate(
            state[key].transpose(1, 2), size=target[key].shape[1], mode="nearest"
        )
        resized[key] = times.transpose(1, 2)
    return resized


class _HFVideoClassifier(nn.Module, ABC):
    """The shared body: a transformers backbone, pooled features, a new linear output layer."""

    model_type: str
    exposed: tuple[str, ...]
    # The mean/std constants of transformers.image_utils that the family's image processor uses
    statistics: tuple[str, str]

    @classmethod
    def pretrained_preprocessing(cls, weights: str | None) -> Preprocessing | None:
        """The mean/std `weights` were trained with; None for none. Raises when the weights
        cannot be had (missing folder, hub id not cached, another model type), before any data
        is read (`vidlearn.cli.pretrained`)."""
        folder = resolve_weights(weights)
        if folder is None:
            return None
        read_folder_config(folder, cls.model_type)
        import_transformers()
        image_utils = importlib.import_module("transformers.image_utils")
        mean, std = (tuple(getattr(image_utils, name)) for name in cls.statistics)
        return folder_preprocessing(folder, mean, std)

    def _build(
        self,
        config_class: type,
        model_class: type,
        architecture: dict[str, object],
        weights: str | None,
        num_frames: int,
        size: int,
        in_channels: int,
    ) -> Path | None:
        """Build `self.backbone`; returns the weights folder it was loaded from, or None."""
        folder = resolve_weights(weights)
        config = config_class(
            **architecture, num_frames=num_frames, image_size=size, num_channels=in_channels
        )
        if folder is None:
            self.backbone = model_class(config)
            return None
        saved = read_folder_config(folder, self.model_type)
        check_architecture(folder, saved, architecture, self.exposed)
        pretrained, loading = model_class.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True
        )
        lacking = [*loading["missing_keys"], *loading.get("mismatched_keys", [])]
        if lacking:  # transformers would leave them randomly initialised, with a warning only
            raise ConfigError(
                f"model.weights={str(folder)!r}: the weights lack or misfit {len(lacking)} "
                f"tensors of the {self.model_type} backbone ({', '.join(map(str, lacking[:5]))}"
                f"{', ...' if len(lacking) > 5 else ''}); pass a complete save_pretrained folder."
            )
        config.num_channels = int(saved.get("num_channels", 3))
        self.backbone = model_class(config)
        state = {key: value.float() for key, value in pretrained.state_dict().items()}
        load_checked(self.backbone, self.resize_tables(state), str(folder))
        if in_channels != config.num_channels:
            patches = self.backbone.embeddings.patch_embeddings
            adapt_first_conv(patches, in_channels)
            if hasattr(patches, "num_channels"):  # VideoMAE checks the input against it
                patches.num_channels = in_channels
            self.backbone.config.num_channels = in_channels
        return folder

    def resize_tables(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """`state` with its position tables fitted to this backbone (learned tables only)."""
        return state

    @abstractmethod
    def features(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        """The pooled backbone features `(B, hidden_size)` the head classifies."""

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        return self.head(self.features(clips))  # (B, num_outputs)


class VideoMAE(_HFVideoClassifier):
    """VideoMAE (Tong et al. 2022) video classifier `(B, T, C, H, W) -> (B, num_outputs)`.

    Features are the mean of the last hidden states then a LayerNorm (`use_mean_pooling`, as
    `VideoMAEForVideoClassification`), or the first token's state without it; then a new linear
    layer. The position table is a fixed sinusoid over `num_frames // tubelet_size` x
    `(size // patch_size) ** 2` patches, so clips must have exactly `num_frames` frames of
    `size` x `size` (`input_limits`). transformers' VideoMAE has no stochastic depth.
    """

    model_type = "videomae"
    statistics = ("IMAGENET_STANDARD_MEAN", "IMAGENET_STANDARD_STD")  # VideoMAE's processor
    exposed = (
        "patch_size",
        "tubelet_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "use_mean_pooling",
    )

    def __init__(
        self,
        num_outputs: int,
        weights: str | None = None,
        num_frames: int = 16,
        size: int = 224,
        in_channels: int = 3,
        patch_size: int = 16,
        tubelet_size: int = 2,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        use_mean_pooling: bool = True,
    ) -> None:
        super().__init__()
        self.input_limits = InputLimits(
            "model=videomae",
            min_frames=tubelet_size,
            min_size=patch_size,
            frames=num_frames,
            size=size,
            frames_multiple=tubelet_size,
            size_multiple=patch_size,
            hint="(VideoMAE's position table is fixed by model.num_frames and model.size)",
        )
        problems = self.input_limits.problems(num_frames, size)
        if problems:  # a table of no patches cannot even be built
            raise ConfigError("; ".join(problems) + ".")
        transformers = import_transformers()
        architecture = {
            "patch_size": patch_size,
            "tubelet_size": tubelet_size,
            "hidden_size": hidden_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "intermediate_size": intermediate_size,
            "use_mean_pooling": use_mean_pooling,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
            "qv_bias": True,
        }
        folder = self._build(
            transformers.VideoMAEConfig,
            transformers.VideoMAEModel,
            architecture,
            weights,
            num_frames,
            size,
            in_channels,
        )
        # VideoMAEForVideoClassification's fc_norm: nn.LayerNorm's default eps, not the config's
        self.norm = nn.LayerNorm(hidden_size) if use_mean_pooling else nn.Identity()
        self.use_mean_pooling = use_mean_pooling
        self.head = nn.Linear(hidden_size, num_outputs)
        self.preprocessing = self.pretrained_preprocessing(str(folder) if folder else None)

    def features(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        """The pooled backbone features `(B, hidden_size)` the head classifies."""
        states = self.backbone(pixel_values=clips).last_hidden_state  # (B, patches, hidden)
        pooled = states.mean(dim=1) if self.use_mean_pooling else states[:, 0]  # (B, hidden)
        return self.norm(pooled)


class TimeSformer(_HFVideoClassifier):
    """TimeSformer (Bertasius et al. 2021) video classifier `(B, T, C, H, W) -> (B, num_outputs)`.

    Features are the CLS token's last hidden state (after the backbone's LayerNorm, as
    `TimesformerForVideoClassification`), then a new linear layer. Clips must have exactly
    `num_frames` frames of `size` x `size` (`input_limits`): the blocks reshape tokens by the
    config's sizes. `drop_path` is the stochastic depth of the last block, rising linearly from
    0 at the first (the config's drop_path_rate).
    """

    model_type = "timesformer"
    statistics = ("IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD")  # TimeSformer's processor
    exposed = (
        "patch_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
    )

    def __init__(
        self,
        num_outputs: int,
        weights: str | None = None,
        num_frames: int = 8,
        size: int = 224,
        in_channels: int = 3,
        patch_size: int = 16,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= drop_path < 1.0:
            raise ConfigError(f"model.drop_path={drop_path} must be in [0, 1).")
        self.input_limits = InputLimits(
            "model=timesformer",
            min_size=patch_size,
            frames=num_frames,
            size=size,
            size_multiple=patch_size,
            hint="(TimeSformer's blocks are built for model.num_frames and model.size)",
        )
        transformers = import_transformers()

        architecture = {
            "patch_size": patch_size,
            "hidden_size": hidden_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "intermediate_size": intermediate_size,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-6,
            "qkv_bias": True,
            "attention_type": "divided_space_time",
        }
        folder = self._build(
            transformers.TimesformerConfig,
            transformers.TimesformerModel,
            architecture,
            weights,
            num_frames,
            size,
            in_channels,
        )
        # Set on the built layers: transformers 5.24's config types drop_path_rate as int and
        # refuses 0.1. The rates are TimesformerLayer's own rule, linspace(0, rate, layers);
        # torchvision's row-mode StochasticDepth is the same per-sample drop as its DropPath.
        rates = torch.linspace(0, drop_path, num_hidden_layers).tolist()
        for layer, rate in zip(self.backbone.encoder.layer, rates, strict=True):
            layer.drop_path = StochasticDepth(rate, mode="row") if rate > 0 else nn.Identity()
        self.head = nn.Linear(hidden_size, num_outputs)
        self.preprocessing = self.pretrained_preprocessing(str(folder) if folder else None)

    def resize_tables(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        return resample_tables(state, self.backbone.state_dict())

    def features(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        """The CLS token's features `(B, hidden_size)` the head classifies."""
        states = self.backbone(pixel_values=clips).last_hidden_state  # (B, 1 + patches, hidden)
        return states[:, 0]
