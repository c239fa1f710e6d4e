"""What the experiment trackers (logger=mlflow, logger=wandb) record beyond Lightning's metrics.

Lightning logs every epoch's metrics and the task's hyperparameters to each logger. A tracker
also records the run's resolved config, flattened to the dotted keys of Hydra overrides
(`optimizer.lr`), when the run starts, and when it ends the figures of summary.json (as
`summary/<name>`), summary.json, and the plots. The runs of one Hydra
multirun share a group named after the sweep directory, and each is named after its run
directory (`<sweep>/<job>` in a multirun).
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from vidlearn.errors import ConfigError


class Tracker(ABC):
    """A Lightning logger that also records the run's config, summary, files and plots."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the resolved config (nested mappings) as flat `a.b.c` parameters."""
        self.log_hyperparams(flatten(config))  # type: ignore[attr-defined]  # the Lightning logger's

    @abstractmethod
    def log_outcome(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        """Record the summary's figures, the run's files and plots, then close the run."""


@contextmanager
def failed_on_error(trackers: list[Tracker]) -> Iterator[None]:
    """Mark the trackers' runs failed when the block raises. Lightning does so for an error
    inside fit or test but marks them finished after each, so an error after training (in
    the plots, say) would leave a finished run, and a W&B run open for the next run."""
    try:
        yield
    except BaseException:
        for tracker in trackers:
            tracker.finalize("failed")  # type: ignore[attr-defined]  # the Lightning logger's
        raise


def flatten(config: Mapping[str, Any] | list, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with the dotted keys of overrides: {"data": {"size": 32}} ->
    {"data.size": 32}; a list holding mappings by index (`augment.transforms.0.p`), other lists
    as values."""
    items = config.items() if isinstance(config, Mapping) else enumerate(config)
    flat: dict[str, Any] = {}
    for key, value in items:
        name = f"{prefix}{key}"
        nested = isinstance(value, list) and any(isinstance(item, Mapping) for item in value)
        if (isinstance(value, Mapping) and value) or nested:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def summary_figures(summary: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of summary.json as `summary/<name>`: each final metric (`summary/val/loss`)
    and each top-level count (`summary/epochs`, `summary/num_train`); NaN metrics stay NaN."""
    numbers = {
        name: value
        for name, value in summary.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    numbers.update(summary.get("metrics", {}))
    return {f"summary/{name}": float(value) for name, value in numbers.items()}


def plot_files(run_dir: Path) -> list[Path]:
    """The run's PNG plots, by name."""
    return sorted((run_dir / "plots").glob("*.png"))


def sweep_group() -> str | None:
    """The name of the sweep directory when this process runs a job of a Hydra multirun."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def run_name(run_dir: Path, group: str | None) -> str:
    """The run directory's name, after its sweep's in a multirun (job folders are numbers)."""
    return f"{group}/{run_dir.name}" if group else run_dir.name


def require(module: str, choice: str) -> None:
    """Refuse logger=`choice` with what to install when `module` is missing (without importing
    it: the tracker libraries take seconds to import)."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"logger={choice} needs the {module} package, which is not installed: "
            "pip install 'vidlearn[loggers]' (or choose logger=csv)."
        )
