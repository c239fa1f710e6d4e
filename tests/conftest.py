"""Shared fixtures: tiny demo data sets generated once per test session, and config composition."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from vidlearn.cli.config import CONF_DIR
from vidlearn.demo import make_images, make_videos

# Two cores are shared by the data loader and the model; more threads only add contention.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def demo_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Manifest of 30 demo videos (12 frames, 32x32) with train/val/test splits."""
    return make_videos(
        tmp_path_factory.mktemp("demo_videos"), seed=0, num_videos=30, frames=12, size=32
    )


@pytest.fixture(scope="session")
def demo_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Manifest of 60 demo stick-figure images (48x48) shaped like an annotation export."""
    return make_images(tmp_path_factory.mktemp("demo_images"), seed=0, num_images=60, size=48)


@pytest.fixture
def compose_train(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml shrunk for tests: CPU, no workers, output under tmp_path."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                "train",
                overrides=[
                    f"paths.output_dir={tmp_path / 'run'}",
                    f"paths.cache_dir={tmp_path / 'cache'}",
                    "data.num_workers=0",
                    "trainer.max_epochs=1",
                    "~callbacks.progress_bar",
                    *overrides,
                ],
            )

    return _compose
