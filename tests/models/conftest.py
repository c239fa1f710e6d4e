"""Fixtures shared by the model tests: torch hub folders, empty or holding fake pretrained files,
and fake torchvision weights served without the internet."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import Weights, WeightsEnum, mobilenet_v2

MOBILENET_V2_FILE = (
    "mobilenet_v2-b0353104.pth"  # the name in MobileNet_V2_Weights.IMAGENET1K_V1.url
)


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point torch hub at an empty folder; returns the checkpoints folder it reads and writes."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def _no_network(*args: object, **kwargs: object) -> socket.socket:
    raise OSError("network is unreachable (test without network)")


@pytest.fixture
def empty_hub(hub_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`hub_dir` on a machine without network: every connection fails at once, so a missing
    pretrained file cannot be downloaded."""
    monkeypatch.setattr(socket, "create_connection", _no_network)
    return hub_dir


def _weights_at(url: str) -> WeightsEnum:
    return WeightsEnum("FakeWeights", {"V1": Weights(url=url, transforms=None, meta={})}).V1


@pytest.fixture
def fake_weights() -> Callable[[str], WeightsEnum]:
    """Make torchvision weights (a WeightsEnum member) whose file is at a given URL."""
    return _weights_at


@pytest.fixture
def served_state(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A state_dict saved under torchvision's naming `<name>-<sha256 prefix>.pth`, standing in for
    a file on download.pytorch.org; returns its path and the state_dict."""
    state = nn.Linear(2, 3).state_dict()
    folder = tmp_path / "served"
    folder.mkdir()
    torch.save(state, folder / "linear.pth")
    digest = hashlib.sha256((folder / "linear.pth").read_bytes()).hexdigest()[:8]
    return (folder / "linear.pth").rename(folder / f"linear-{digest}.pth"), state


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


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        """Keep the test output free of the server's access log."""


@pytest.fixture
def http_hub(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server over an empty folder, standing in for a hub that answers 404."""
    (tmp_path / "http").mkdir()
    handler = partial(_QuietHandler, directory=str(tmp_path / "http"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        thread.join()
