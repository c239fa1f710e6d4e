"""logger=mlflow: Lightning's MLflow logger writing to a local SQLite store, with the run's
config, summary, files and plots (vidlearn.callbacks.tracker).

The store is a SQLite database (`sqlite:///<paths.log_dir>/mlflow.db` by default), browsable
with `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db`; artifacts are files under
`artifact_location`. Runs of a multirun carry the tag `sweep=<sweep directory name>`.
Metric names keep class names of any script (characters MLflow refuses become `_`), and
config values keep up to MLflow's 6000 characters. A resumed run (`resume=`, in place or in a
new run directory) logs into the MLflow run it continues when that run is in the same store;
MLflow keeps a parameter's first value, so a config value the resume changed is the tag
`resumed.<key>` (e.g. `resumed.trainer.max_epochs`). A multirun job resuming into its own
directory (each job of a sweep resuming one checkpoint) opens a new run tagged
`resumed_from=<resumed run id>`.
"""

from __future__ import annotations

import fcntl
import logging
import re
import time
import warnings
from argparse import Namespace
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from vidlearn.callbacks.tracker import (
    Tracker,
    continues_tracker_run,
    plot_files,
    require,
    resumed_run,
    run_name,
    summary_figures,
    sweep_group,
)
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

SQLITE_PREFIX = "sqlite:///"
# The run's files kept as artifacts, beside the plots.
RUN_FILES = ("config.yaml", "summary.json")
# Characters MLflow refuses in metric names on any system (it takes `:` except on Windows).
UNSAFE = re.compile(r"[^\w./ -]")
MAX_NAME = 250  # MLflow's limit on a metric name
MAX_PARAM_VALUE = 6000  # and on a parameter's value
PARAMS_PER_CALL = 100  # the most parameters one MLflow call takes


class MLflowTracker(MLFlowLogger, Tracker):
    """An MLflow run named after `run_dir` in the experiment `experiment_name`.

    `artifact_location` (a folder) holds the artifacts of the runs of an experiment this logger
    creates; an experiment that exists keeps its own. `resume` (the run's `resume=`): continue
    the MLflow run that the resumed run directory recorded, when it is `run_dir` and the run is
    in this store; resumed into another directory, a new run tagged `resumed_from`.
    """

    kind = "mlflow"

    def __init__(
        self,
        run_dir: str,
        tracking_uri: str,
        artifact_location: str,
        experiment_name: str = "vidlearn",
        tags: Mapping[str, str] | None = None,
        resume: str | None = None,
    ) -> None:
        require("mlflow", "mlflow")
        from mlflow.exceptions import MlflowException  # here: mlflow takes seconds to import

        if not experiment_name or not str(experiment_name).strip():
            raise ConfigError(
                f"logger.mlflow.experiment_name={experiment_name!r}: MLflow needs a name for the "
                "experiment the run is filed under; give one (the default is vidlearn)."
            )
        self.run_dir = Path(run_dir)
        earlier = resumed_run(resume, self.kind, ("run_id", "tracking_uri"))
        continued = earlier is not None and continues_tracker_run(resume, self.run_dir)
        forked = {"resumed_from": earlier["run_id"]} if earlier and not continued else {}
        resumed = continued and earlier.get("tracking_uri") == tracking_uri
        self.resumed_id = earlier["run_id"] if resumed else None
        group = sweep_group()
        database = sqlite_file(tracking_uri)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        with store_lock(database), warnings.catch_warnings():
            # SQLAlchemy 2 deprecates a loader option that MLflow's store sets up with.
            warnings.filterwarnings("ignore", message=r"The ``noload`` loader strategy")
            if self.resumed_id is not None and not active_run(tracking_uri, self.resumed_id):
                logger.warning(
                    "mlflow: the run %s that %s logged to is no longer in %s (deleted?); the "
                    "resumed run logs to a new one",
                    self.resumed_id,
                    resume,
                    tracking_uri,
                )
                self.resumed_id = None
            try:
                super().__init__(
                    experiment_name=experiment_name,
                    run_name=run_name(Path(run_dir), group),
                    tracking_uri=tracking_uri,
                    tags={**(tags or {}), **({"sweep": group} if group else {}), **forked},
                    artifact_location=Path(artifact_location).expanduser().resolve().as_uri(),
                    run_id=self.resumed_id,
                )
                self._experiment_id = self._experiment_by_name()
            except MlflowException as error:  # a store or name MLflow refuses; it says which
                raise ConfigError(
                    f"logger.mlflow.tracking_uri={tracking_uri!r} with "
                    f"logger.mlflow.experiment_name={experiment_name!r}: MLflow refused them: "
                    f"{str(error).strip().splitlines()[0]} Use a store such as "
                    "sqlite:///<folder>/mlflow.db (the default) or an http(s) server's address."
                ) from None
        logger.info(
            "mlflow: run %s, experiment %s, store %s", self._run_name, experiment_name, tracking_uri
        )

    def _experiment_by_name(self) -> str:
        """The id of the experiment `experiment_name`, created when missing (Lightning's own
        lookup says so with a warning on every first run). A deleted one keeps its name in the
        store, so it is refused with the ways out."""
        found = self._mlflow_client.get_experiment_by_name(self._experiment_name)
        if found is not None and found.lifecycle_stage == "deleted":
            raise ConfigError(
                f"logger.mlflow.experiment_name={self._experiment_name} names an experiment "
                f"deleted from {self._tracking_uri}: restore it (mlflow experiments restore "
                f"--experiment-id {found.experiment_id}), remove it for good (mlflow gc), or "
                "choose another logger.mlflow.experiment_name."
            )
        if found is not None:
            return found.experiment_id
        return self._mlflow_client.create_experiment(
            self._experiment_name, artifact_location=self._artifact_location
        )

    def run_entry(self) -> dict[str, str]:
        """The run's id and store, for a resume to continue it."""
        return {"run_id": self.run_id, "tracking_uri": self._tracking_uri}

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Mark a continued run running again (it was finished or failed), then log `config`."""
        if self.resumed_id is not None and rank_zero_only.rank == 0:
            self.experiment.update_run(self.run_id, status="RUNNING")
        super().log_config(config)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        """Log `params`, nested ones under `a/b` keys as Lightning does, with values cut at
        MLflow's 6000 characters (Lightning's logger cuts them at 250). In a continued run,
        a value other than the one logged first is the tag `resumed.<key>`: MLflow refuses to
        change a parameter."""
        from mlflow.entities import Param, RunTag  # here: mlflow takes seconds to import

        flat = _flatten_dict(_convert_params(params))
        values = {key: str(value)[:MAX_PARAM_VALUE] for key, value in flat.items()}
        logged = self.experiment.get_run(self.run_id).data.params if self.resumed_id else {}
        batch = [Param(k, v) for k, v in values.items() if logged.get(k, v) == v]
        changed = [RunTag(f"resumed.{k}", v) for k, v in values.items() if logged.get(k, v) != v]
        for start in range(0, len(batch), PARAMS_PER_CALL):
            self.experiment.log_batch(
                run_id=self.run_id, params=batch[start : start + PARAMS_PER_CALL]
            )
        for start in range(0, len(changed), PARAMS_PER_CALL):
            self.experiment.log_batch(
                run_id=self.run_id, tags=changed[start : start + PARAMS_PER_CALL]
            )

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log `metrics` at `step` under names MLflow accepts (`mlflow_name`)."""
        from mlflow.entities import Metric  # here: mlflow takes seconds to import

        stamp = int(time.time() * 1000)
        batch = [Metric(mlflow_name(k), float(v), stamp, step or 0) for k, v in metrics.items()]
        self.experiment.log_batch(run_id=self.run_id, metrics=batch)

    def log_outcome(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        """Summary figures as metrics, config.yaml, summary.json and plots/ as artifacts."""
        self.log_metrics(summary_figures(summary))
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                self.experiment.log_artifact(self.run_id, str(run_dir / name))
        for plot in plot_files(run_dir):
            self.experiment.log_artifact(self.run_id, str(plot), "plots")
        self.finalize("success")


def active_run(tracking_uri: str, run_id: str) -> bool:
    """Whether the store at `tracking_uri` holds the run `run_id`, not deleted."""
    from mlflow.exceptions import MlflowException  # here: mlflow takes seconds to import
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri).get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:  # no such run
        return False


def sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///<path>` tracking URI; None for other stores."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    return Path(tracking_uri[len(SQLITE_PREFIX) :])


@contextmanager
def store_lock(database: Path | None) -> Iterator[None]:
    """Hold `<database>.lock` while the store is opened: MLflow creates a new database's
    tables and an experiment on first use, and two runs of a sweep doing so at once fail
    (duplicate column, experiment exists). No lock for other stores."""
    if database is None:
        yield
        return
    with open(database.with_name(database.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mlflow_name(name: str) -> str:
    """`name` as a metric name MLflow stores: characters it refuses (`+`, `(`, `:` ...) as `_`,
    empty, `.` and `..` path segments as `_`, under its 250-character limit. Letters of every
    script stay (Lightning's own cleaning drops non-ASCII: class `猫` gave `val/recall/`)."""
    # twice: cutting the name can leave an empty or dot last segment
    return filled_segments(filled_segments(UNSAFE.sub("_", name))[: MAX_NAME - 1])


def filled_segments(path: str) -> str:
    """`path` with each empty, `.` or `..` segment as `_` (MLflow treats names as paths)."""
    return "/".join(segment if segment.strip(".") else "_" for segment in path.split("/"))
