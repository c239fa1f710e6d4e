"""Shared fixtures: tiny demo data sets generated once per test session, and config composition."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, settings
from omegaconf import DictConfig

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.train import train
from vidlearn.demo import make_images, make_videos

# Two cores are shared by the data loader and the model; more threads only add contention.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Property-based tests (Hypothesis). "default": few examples, derandomised, no deadline, so the
# default suite stays fast and gives the same result on every run; "slow" (HYPOTHESIS_PROFILE=slow,
# which .ci/run sets for its `-m "slow or property"` pass): ten times the examples, also fixed. Every
# Hypothesis test is marked `property` at collection (below). Tests that need their own budget set
# @settings(max_examples=...) on top of the profile.
settings.register_profile(
    "default",
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "slow",
    max_examples=300,
    derandomize=True,  # so CI gives the same verdict on every run
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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


def compose_small_train(output: Path, *overrides: str) -> DictConfig:
    """conf/train.yaml shrunk for tests: CPU, no workers, one epoch, output in `output`, and
    the final test on the centre clip alone (views=center; `video_checkpoint` keeps the
    default's 5 clips for the tests that read them)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                f"paths.output_dir={output / 'run'}",
                f"paths.cache_dir={output / 'cache'}",
                "data.num_workers=0",
                "trainer.max_epochs=1",
                "~callbacks.progress_bar",
                "views=center",
                *overrides,
            ],
        )


@pytest.fixture
def compose_train(tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_small_train with output under the test's tmp_path."""
    return partial(compose_small_train, tmp_path)


@pytest.fixture(scope="session")
def video_checkpoint(tmp_path_factory: pytest.TempPathFactory, demo_videos: Path) -> Path:
    """Best checkpoint of the default frame CNN + GRU trained one epoch on 6-frame 32x32 clips,
    its final test under the default views (uniform, 5 clips)."""
    cfg = compose_small_train(
        tmp_path_factory.mktemp("video_run"),
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "views=uniform",
    )
    return Path(train(cfg)["best_checkpoint"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every Hypothesis test `property`, so the slow run can select them all again; skip the
    tests that need torchcodec (marked `torchcodec`, or run with a torchcodec backend) where it
    is installed but cannot load, which is a machine without the system FFmpeg libraries."""
    from vidlearn.data.video import auto_backends

    no_torchcodec = pytest.mark.skip(
        reason="torchcodec cannot load here: it needs the system FFmpeg libraries "
        "(Debian: apt-get install ffmpeg)"
    )
    torchcodec_loads = "torchcodec" in auto_backends()
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)
        if not torchcodec_loads and _needs_torchcodec(item):
            item.add_marker(no_torchcodec)


def _needs_torchcodec(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return item.get_closest_marker("torchcodec") is not None or any(
        isinstance(value, str) and value.startswith("torchcodec") for value in params.values()
    )


@pytest.fixture
def decord_then_pyav(monkeypatch: pytest.MonkeyPatch) -> None:
    """backend=auto tries decord, then PyAV (torchcodec, its first choice, left out): for tests
    of the fallback between backends, with files that decord cannot read and PyAV can."""
    from vidlearn.data import video

    monkeypatch.setattr(video, "AUTO_BACKENDS", ("decord", "pyav"))
