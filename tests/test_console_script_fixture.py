"""The `console_script` fixture (tests/conftest.py) runs a script in-process without leaking its
process-wide changes into the tests that follow."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from conftest import ScriptRun
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig


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
