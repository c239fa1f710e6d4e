"""A CSV logger that keeps a resumed run's earlier epochs in metrics.csv.

Lightning's CSVLogger deletes the metrics.csv of a log folder that is not empty, so a run
resumed in place (`resume=RUN_DIR` with the same output folder, as a requeued Slurm job does)
lost every epoch before the resume, and training_curves.png its history. `ResumableCSVLogger`
keeps the earlier rows and drops only those the new process logs again: rows whose step is at
or after the first step it logs (steps after the resumed checkpoint, or every row when a run
restarts from step 0).
"""

from __future__ import annotations

import csv
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer, continuing an existing metrics.csv instead of deleting it."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self._continued = False

    def _check_log_dir_exists(self) -> None:
        """Keep the earlier rows (Lightning's writer deletes metrics.csv here)."""

    def save(self) -> None:
        if self.metrics and not self._continued:
            self._continued = True
            if self._fs.isfile(self.metrics_file_path):
                self._keep_rows_before(min(row["step"] for row in self.metrics))
        super().save()

    def _keep_rows_before(self, first_step: int) -> None:
        """Rewrite metrics.csv with its rows logged before `first_step`; adopt its columns."""
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if _step(row) < first_step]
            self.metrics_keys = list(reader.fieldnames or [])
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


def _step(row: dict[str, Any]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0


class ResumableCSVLogger(CSVLogger):
    """CSVLogger whose metrics.csv survives a resume in the same folder (see the module doc)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
