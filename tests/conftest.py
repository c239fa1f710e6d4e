"""Shared fixtures: tiny demo data sets generated once per test session, and config composition."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import random
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
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


@dataclass(frozen=True)
class ScriptRun:
    """A console script's exit status and what it printed, as its user would see them."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def console_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., ScriptRun]:
    """Run a console script in this process: `console_script("vidlearn-train", *args, cwd=...,
    **env)` calls `vidlearn.cli.train.main()` with `sys.argv` as the script would get it (a
    function decorated with `console_main` may stand in for the script's name).

    A fresh interpreter costs several seconds of imports (torch, Lightning) per run, and the
    script's own behaviour (exit code, stderr) is the same in-process; the few tests that check
    the console scripts themselves start them as subprocesses (tests/cli/test_errors.py, and the
    wheel check starts every one). What a run changes in this process is put back after it:
    Hydra's global state (GlobalHydra, HydraConfig), the environment (seed variables, Hydra's
    env_set), the random generators, torch's thread count and the logging handlers Hydra
    installs (which hold the captured stdout); and what a run may change beside those (see
    `process_settings`): the working folder, sys.path, the warning filters (vidlearn.cli.quiet
    adds some), torch's default dtype, deterministic and cuDNN/TF32 flags (Lightning's Trainer
    sets them from its own), the float32 matmul precision, the signal handlers and the
    multiprocessing start method.
    """
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def run(
        script: str | Callable[[], Any], *args: str, cwd: Path | None = None, **env: str
    ) -> ScriptRun:
        if isinstance(script, str):
            main = importlib.import_module(f"vidlearn.cli.{script.removeprefix('vidlearn-')}").main
        else:
            main, script = script, "vidlearn-test"
        if cwd is not None:
            monkeypatch.chdir(cwd)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", [script, *args])
        capsys.readouterr()  # what the test printed before is not the script's
        with restored_process_state():
            try:
                code = exit_status(main())  # the console script is `sys.exit(main())`
            except SystemExit as stop:
                code = exit_status(stop.code)
        printed = capsys.readouterr()
        return ScriptRun(code, printed.out, printed.err)

    return run


def exit_status(code: object) -> int:
    """The process's exit status after `sys.exit(code)`: 0 for None, an int as it is, else 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


@contextmanager
def restored_process_state() -> Iterator[None]:
    """Undo what a console script run changes in this process (see `console_script`)."""
    GlobalHydra.instance().clear()
    hydra_config = HydraConfig.instance().cfg  # --cfg and --help set it and leave it set
    environ = dict(os.environ)
    generators = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    threads = torch.get_num_threads()
    loggers = [logging.getLogger(), logging.getLogger("hydra")]
    saved = [(log.handlers[:], log.level, log.propagate, log.disabled) for log in loggers]
    settings = process_settings()
    try:
        with warnings.catch_warnings():  # the filters, as they were
            yield
    finally:
        settings()
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = hydra_config
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        os.environ.update(environ)
        random.setstate(generators[0])
        np.random.set_state(generators[1])
        torch.set_rng_state(generators[2])
        torch.set_num_threads(threads)
        for log, (handlers, level, propagate, disabled) in zip(loggers, saved, strict=True):
            for handler in set(log.handlers) - set(handlers):
                handler.close()
            log.handlers[:] = handlers
            log.setLevel(level)
            log.propagate, log.disabled = propagate, disabled


def process_settings() -> Callable[[], None]:
    """Read the process-wide settings a script may change beside Hydra, logging and the
    generators; the function returned sets them back."""
    cwd, path = os.getcwd(), sys.path[:]
    dtype = torch.get_default_dtype()
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cudnn = torch.backends.cudnn
    flags = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32)
    matmul_tf32, precision = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_float32_matmul_precision(),
    )
    handlers = {number: signal.getsignal(number) for number in signal.valid_signals()}
    start_method = multiprocessing.get_start_method(allow_none=True)

    def restore() -> None:
        os.chdir(cwd)
        sys.path[:] = path
        torch.set_default_dtype(dtype)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = flags
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
        torch.set_float32_matmul_precision(precision)
        for number, handler in handlers.items():
            if handler is not None and signal.getsignal(number) is not handler:
                signal.signal(number, handler)
        multiprocessing.set_start_method(start_method, force=True)

    return restore


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
