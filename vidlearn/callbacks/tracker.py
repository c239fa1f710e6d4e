"""What the experiment trackers (logger=mlflow, logger=wandb) record beyond Lightning's metrics.

Lightning logs every epoch's metrics and the task's hyperparameters to each logger. A tracker
also records the run's resolved config, flattened to the dotted keys of Hydra overrides
(`optimizer.lr`), when the run starts, and when it ends the figures of summary.json (as
`summary/<name>`), summary.json, and the plots. The runs of one Hydra
multirun share a group named after the sweep directory, and each is named after its run
directory (`<sweep>/<job>` in a multirun).

A resumed run continues the tracker run it resumes: each tracker records its run (the id, and
for MLflow the store) in the run directory's trackers.json when it logs the config, and a tracker
built with `resume=` reads the entry of the run directory that `resume` names (`resumed_run`).
A job of a multirun resuming into its own directory forks it instead (`continues_tracker_run`:
the jobs of a sweep that all resume one checkpoint would otherwise interleave their metrics in
one tracker run): it opens a new tracker run tagged `resumed_from` with the resumed run's id.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from pytorch_lightning.utilities import rank_zero_only

from vidlearn.callbacks.run_dir import run_folder
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

RUNS_FILE = "trackers.json"  # in the run directory: {tracker: what identifies its run}


class Tracker(ABC):
    """A Lightning logger that also records the run's config, summary, files and plots.

    `kind` names the tracker's entry in trackers.json; `run_dir` is the run directory.
    """

    kind: ClassVar[str]
    run_dir: Path

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the resolved config (nested mappings) as flat `a.b.c` parameters, and the
        tracker's run in the run directory, for a resume to continue it."""
        self.log_hyperparams(flatten(config))  # type: ignore[attr-defined]  # the Lightning logger's
        if rank_zero_only.rank == 0:
            record_run(self.run_dir, self.kind, self.run_entry())

    @abstractmethod
    def run_entry(self) -> dict[str, str]:
        """What identifies this tracker's run (its id, ...), as trackers.json records it."""

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


def record_run(run_dir: Path, kind: str, entry: Mapping[str, str]) -> None:
    """Write `entry` as tracker `kind`'s run in `run_dir`/trackers.json (atomically: a resume
    may read it while another tracker of the run writes)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUNS_FILE
    runs = _read_runs(path) or {}  # an unreadable file is replaced
    runs[kind] = dict(entry)
    temporary = path.with_name(f".{RUNS_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(runs, indent=2))
    os.replace(temporary, path)


def resumed_run(resume: str | None, kind: str, keys: Sequence[str]) -> dict[str, str] | None:
    """Tracker `kind`'s entry in the trackers.json of the run directory `resume=` names (a run
    directory or a checkpoint in one), holding text under each of `keys`; None for a new run or
    one that `kind` did not log. An entry that cannot be read (the file cut short by a crash,
    edited) is a warning, and the resumed run logs to a new run: the checkpoint still resumes.
    """
    if not resume:
        return None
    path = run_folder(Path(resume).expanduser()) / RUNS_FILE
    if not path.is_file():
        return None
    runs = _read_runs(path)
    entry = None if runs is None else runs.get(kind)
    if runs is None or (
        entry is not None
        and not (isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in keys))
    ):
        logger.warning(
            "%s: no readable %s entry (%s expected); the resumed run logs to a new %s run",
            path,
            kind,
            ", ".join(keys),
            kind,
        )
        return None
    return entry


def continues_tracker_run(resume: str | None, run_dir: Path) -> bool:
    """Whether a resumed run logs into the tracker run of the run it resumes: yes for a resume
    in place (`resume=` names `run_dir` itself) and for a single run continuing into a new
    directory (`resume=RUN_DIR`, a requeued job); no for a job of a multirun, since every job of
    `-m ... resume=RUN_DIR` forks the same run and would interleave its metrics in one."""
    if not resume:
        return False
    in_place = run_folder(Path(resume).expanduser()).resolve() == run_dir.resolve()
    return in_place or sweep_group() is None


def _read_runs(path: Path) -> dict[str, Any] | None:
    """trackers.json's mapping; None when the file is missing or is not a JSON object."""
    try:
        runs = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, JSONDecodeError, UnicodeDecodeError
        return None
    return runs if isinstance(runs, dict) else None


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
