"""Fixtures shared by the model tests: torch hub folders, empty or holding fake pretrained files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import mobilenet_v2

MOBILENET_V2_FILE = (
    "mobilenet_v2-b0353104.pth"  # the name in MobileNet_V2_Weights.IMAGENET1K_V1.url
)


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point torch hub at an empty folder; returns the checkpoints folder it would read."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture(scope="session")
def fake_imagenet_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME whose hub cache holds a randomly initialised mobilenet_v2 under its real name."""
    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(mobilenet_v2().state_dict(), checkpoints / MOBILENET_V2_FILE)
    return home


@pytest.fixture
def cached_imagenet(fake_imagenet_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Point torch hub at `fake_imagenet_home`; returns the state_dict stored there."""
    monkeypatch.setenv("TORCH_HOME", str(fake_imagenet_home))
    path = fake_imagenet_home / "hub" / "checkpoints" / MOBILENET_V2_FILE
    return torch.load(path, weights_only=True)
