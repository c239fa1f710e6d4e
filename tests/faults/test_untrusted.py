"""A checkpoint carrying a pickle payload is refused by eval, predict and export without running it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.eval import run_eval
from vidlearn.cli.export import export
from vidlearn.cli.predict import predict
from vidlearn.inference.checkpoint import CheckpointError


class Payload:
    """Unpickling this creates `marker`: a stand-in for code smuggled into a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def compose_tool(name: str, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


TOOLS: dict[str, Callable[[Path, Path, Path], object]] = {
    "eval": lambda ckpt, videos, out: run_eval(
        compose_tool("eval", f"ckpt={ckpt}", f"data.manifest={videos}", f"out={out}")
    ),
    "predict": lambda ckpt, videos, out: predict(
        compose_tool("predict", f"ckpt={ckpt}", f"input={videos}", f"out={out / 'p.csv'}")
    ),
    "export": lambda ckpt, videos, out: export(
        compose_tool("export", f"ckpt={ckpt}", f"out={out / 'model.pt'}")
    ),
}


@pytest.mark.parametrize("tool", list(TOOLS))
def test_pickle_payload_is_refused_without_running_it(
    tmp_path: Path, demo_videos: Path, tool: str
) -> None:
    marker = tmp_path / "payload_ran"
    tampered = tmp_path / "tampered.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"classes": Payload(marker)}}, tampered)
    with pytest.raises(CheckpointError, match="refused to load") as error:
        TOOLS[tool](tampered, demo_videos, tmp_path / "out")
    assert str(tampered) in str(error.value)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
