"""The `console_script` fixture (tests/conftest.py) runs a script in-process without leaking its
process-wide changes into the tests that follow."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from conftest import ScriptRun
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from vidlearn.cli.console import console_main


def test_a_run_leaves_hydra_the_environment_the_generators_and_logging_as_they_were(
    console_script: Callable[..., ScriptRun], tmp_path: Path
) -> None:
    """Caught planted bugs: without the environment put back, PL_GLOBAL_SEED (set by the run's
    seed_everything) stayed; without the handlers put back, Hydra's job logging handlers
    replaced pytest's on the root logger; without Python's generator put back, the next draw was
    the seeded run's."""
    root = logging.getLogger()
    handlers, environ = root.handlers[:], dict(os.environ)
    generators = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    random.setstate(generators[0])  # the next draws repeat these, unless something reseeds
    np.random.set_state(generators[1])
    torch.set_rng_state(generators[2])
    # The run gets as far as the task (seeded, Hydra's logging configured), then stops at the
    # missing manifest.
    result = console_script(
        "vidlearn-train", f"data.manifest={tmp_path / 'nope.csv'}", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 2 and "nope.csv" in result.stderr
    assert root.handlers == handlers
    assert dict(os.environ) == environ
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws
    assert not GlobalHydra.instance().is_initialized()
    assert not HydraConfig.initialized()  # else the next train() records the run's overrides


def test_printing_the_job_config_leaves_no_hydra_config_behind(
    console_script: Callable[..., ScriptRun],
) -> None:
    """Hydra's --cfg sets HydraConfig and never unsets it; the next in-process train() would
    then record that command's overrides as its own (vidlearn/cli/run_files.py). Caught planted
    bug: without HydraConfig put back, it stayed initialized."""
    result = console_script("vidlearn-train", "data.size=40", "--cfg", "job")
    assert result.returncode == 0 and "size: 40" in result.stdout
    assert not HydraConfig.initialized()


def test_a_run_leaves_the_warning_filters_as_they_were(
    console_script: Callable[..., ScriptRun], tmp_path: Path
) -> None:
    """Every script installs vidlearn's warning filters (vidlearn.cli.quiet); they stayed for the
    tests that follow, hiding the warnings those filters match from them."""
    filters = warnings.filters[:]
    result = console_script(
        "vidlearn-train", f"data.manifest={tmp_path / 'nope.csv'}", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 2
    assert warnings.filters == filters


def process_state() -> dict[str, object]:
    """What a script may change process-wide beside Hydra, logging and the generators."""
    return {
        "cwd": os.getcwd(),
        "sys.path": sys.path[:],
        "default dtype": torch.get_default_dtype(),
        "deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic),
        "tf32": (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32),
        "matmul precision": torch.get_float32_matmul_precision(),
        "SIGTERM": signal.getsignal(signal.SIGTERM),
        "start method": multiprocessing.get_start_method(allow_none=True),
    }


def test_a_script_that_changes_process_wide_settings_leaves_them_as_they_were(
    console_script: Callable[..., ScriptRun], tmp_path: Path
) -> None:
    """Lightning's Trainer sets cudnn.benchmark and deterministic algorithms from its flags and
    leaves them; a run may set the matmul precision, a signal handler, the start method. Each
    stayed for the tests that follow (planted here by a script that changes them all)."""

    @console_main("train")
    def main(cfg: DictConfig) -> None:
        os.chdir(tmp_path)
        sys.path.insert(0, str(tmp_path))
        torch.set_default_dtype(torch.float64)
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("medium")
        signal.signal(signal.SIGTERM, lambda *_: None)
        multiprocessing.set_start_method("spawn", force=True)

    before = process_state()
    assert console_script(main, f"hydra.run.dir={tmp_path}").returncode == 0
    assert process_state() == before
