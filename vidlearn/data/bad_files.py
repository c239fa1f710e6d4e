"""Count the files a run had to skip, report them, and stop when there are too many.

Datasets replace an unreadable file by another sample and attach a `"path: reason"` record to
the batch (`batch["skipped"]`); this callback gathers those records from every split.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl

from vidlearn.errors import UserError

logger = logging.getLogger(__name__)


class TooManyBadFilesError(UserError, RuntimeError):
    """More than `max_bad_fraction` of a split's files could not be read."""


class BadFileMonitor(pl.Callback):
    """Collect skipped files; raise TooManyBadFilesError above `max_bad_fraction` of a split."""

    def __init__(self, max_bad_fraction: float = 0.01) -> None:
        self.max_bad_fraction = max_bad_fraction
        self.skipped: dict[str, str] = {}  # path -> reason

    @property
    def records(self) -> list[dict[str, str]]:
        """Skipped files as `{"path": ..., "reason": ...}`, in the order first seen."""
        return [{"path": path, "reason": reason} for path, reason in self.skipped.items()]

    def _collect(self, trainer: pl.Trainer, batch: Any, split: str) -> None:
        if not isinstance(batch, dict):
            return
        known = len(self.skipped)
        for record in batch.get("skipped", []):
            path, _, reason = record.partition(": ")
            self.skipped.setdefault(path, reason)
        if len(self.skipped) == known:
            return  # the share of bad files only grows with a new one: nothing to check
        dataset = trainer.datamodule.datasets.get(split) if trainer.datamodule is not None else None
        if dataset is None:
            return
        paths = set(dataset.paths)
        bad = [path for path in self.skipped if path in paths]
        if len(bad) > self.max_bad_fraction * len(paths):
            listing = "\n".join(f"  {path}: {self.skipped[path]}" for path in bad[:50])
            raise TooManyBadFilesError(
                f"{len(bad)} of {len(paths)} {split} files could not be read, more than "
                f"data.max_bad_fraction={self.max_bad_fraction}:\n{listing}\n"
                "Fix or remove these files (or raise data.max_bad_fraction)."
            )

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._collect(trainer, batch, "train")

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._collect(trainer, batch, "val")

    def on_test_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._collect(trainer, batch, "test")
