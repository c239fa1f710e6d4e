"""Every conf/model/*.yaml instantiates and runs; its keys are exactly the constructor's."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).parents[2] / "conf" / "model"
INPUT_SHAPES = {
    "frame_gru": (1, 8, 3, 64, 64),
    "mobilenet_v2": (1, 3, 64, 64),
    "r3d_18": (1, 4, 3, 32, 32),
    "mc3_18": (1, 4, 3, 32, 32),
    "r2plus1d_18": (1, 4, 3, 32, 32),
    "s3d": (1, 8, 3, 32, 32),
    "hms_cnn_rnn": (1, 25, 1, 150, 150),
}
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_every_model_config_has_an_input_shape_here() -> None:
    assert sorted(path.stem for path in CONFIGS) == sorted(INPUT_SHAPES)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_model_config_keys_are_the_constructor_arguments(path: Path) -> None:
    cfg = OmegaConf.load(path)
    parameters = inspect.signature(get_class(cfg._target_)).parameters
    assert set(cfg) - {"_target_"} == set(parameters) - {"num_outputs"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_model_config_instantiates_and_maps_inputs_to_logits(path: Path) -> None:
    cfg = OmegaConf.load(path)
    if "weights" in cfg:
        cfg.weights = "none"  # no pretrained files on test machines
    model = instantiate(cfg, num_outputs=3).eval()
    with torch.no_grad():
        assert model(torch.randn(*INPUT_SHAPES[path.stem])).shape == (1, 3)
