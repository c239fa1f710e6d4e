"""Every conf/model/*.yaml instantiates and runs; its keys are exactly the constructor's; the
presets follow the data config (channels, clip length, frame size) without a second override."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).parents[2] / "conf" / "model"
# (data.frames, data.size) each preset runs at in these tests; None frames = an image model.
DATA_SHAPES = {
    "frame_gru": (8, 64),
    "mobilenet_v2": (None, 64),
    "r3d_18": (4, 32),
    "mc3_18": (4, 32),
    "r2plus1d_18": (4, 32),
    "s3d": (8, 32),
    "hms_cnn_rnn": (6, 64),
    "videomae": (4, 32),
    "timesformer": (4, 32),
    "swin3d_t": (2, 16),
    "swin3d_s": (2, 16),
    "swin3d_b": (2, 16),
    "mvit_v1_b": (16, 224),
    "mvit_v2_s": (16, 224),
}
# Presets whose default size is too large for a quick test, shrunk (architecture keys only).
TINY_TRANSFORMER = (
    "model.hidden_size=32",
    "model.num_hidden_layers=1",
    "model.num_attention_heads=2",
    "model.intermediate_size=64",
)
SHRINK = {"videomae": TINY_TRANSFORMER, "timesformer": TINY_TRANSFORMER}
# Presets whose clip the architecture fixes (they follow data.channels only), and presets too big
# for the default run.
FIXED_CLIP = {"mvit_v1_b", "mvit_v2_s"}
SLOW = {"swin3d_s", "swin3d_b", *FIXED_CLIP}
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


@pytest.fixture
def compose_model(compose_train: Callable[..., DictConfig]) -> Callable[..., DictConfig]:
    """The `model` node of train.yaml composed with model=NAME, random weights, and overrides."""

    def compose(name: str, *overrides: str) -> DictConfig:
        weights = (
            ["model.weights=none"]
            if "weights" in OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
            else []
        )
        return compose_train(f"model={name}", *weights, *SHRINK.get(name, ()), *overrides).model

    return compose


def inputs(frames: int | None, channels: int, size: int) -> torch.Tensor:
    """A batch of two random clips (B, T, C, H, W), or images (B, C, H, W) when frames is None."""
    shape = (2, channels, size, size) if frames is None else (2, frames, channels, size, size)
    return torch.randn(*shape)


def test_every_model_config_has_a_data_shape_here() -> None:
    assert sorted(path.stem for path in CONFIGS) == sorted(DATA_SHAPES)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_model_config_keys_are_the_constructor_arguments(path: Path) -> None:
    cfg = OmegaConf.load(path)
    parameters = inspect.signature(get_class(cfg._target_)).parameters
    assert set(cfg) - {"_target_"} == set(parameters) - {"num_outputs"}


def presets(names: set[str]) -> list:
    return [pytest.param(name, marks=[pytest.mark.slow] * (name in SLOW)) for name in sorted(names)]


@pytest.mark.parametrize("name", presets(set(DATA_SHAPES)))
def test_model_preset_instantiates_and_maps_rgb_inputs_to_logits(
    compose_model: Callable[..., DictConfig], name: str
) -> None:
    frames, size = DATA_SHAPES[name]
    cfg = compose_model(name, f"data.frames={frames or 8}", f"data.size={size}", "data.channels=3")
    model = instantiate(cfg, num_outputs=3).eval()
    with torch.no_grad():
        assert model(inputs(frames, 3, size)).shape == (2, 3)


@pytest.mark.parametrize("name", presets(set(DATA_SHAPES) - FIXED_CLIP))
def test_model_preset_follows_data_channels_frames_and_size(
    compose_model: Callable[..., DictConfig], name: str
) -> None:
    frames, size = DATA_SHAPES[name]
    frames = None if frames is None else frames + 2
    size += 16  # a whole number of the transformers' 16-pixel patches
    cfg = compose_model(name, f"data.frames={frames or 8}", f"data.size={size}", "data.channels=1")
    model = instantiate(cfg, num_outputs=2).eval()
    with torch.no_grad():
        assert model(inputs(frames, 1, size)).shape == (2, 2)
