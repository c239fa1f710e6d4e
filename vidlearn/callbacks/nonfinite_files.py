"""Name the files behind a non-finite training loss, whether the run stops or skips the step.

The task sees only the batch's train-split indices (it never imports `vidlearn.data`); this
callback maps them to paths through the DataModule's training dataset. With
`task.on_nonfinite_loss=raise` it rewrites the NonFiniteLossError's message in place (Lightning
re-raises that same exception after its clean-up); with `skip` it logs and records each skipped
step, so the run can report them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl

from vidlearn.tasks.base import NonFiniteLossError

logger = logging.getLogger(__name__)


class NonFiniteLossFiles(pl.Callback):
    """Put file paths into NonFiniteLossError; record skipped steps as `{"epoch", "step", "files"}`."""

    def __init__(self) -> None:
        self.skipped_steps: list[dict[str, Any]] = []

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, NonFiniteLossError):
            exception.name_files(_paths(trainer, exception.indices))

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # training_step returned None: the task skipped a non-finite loss (on_nonfinite_loss=skip).
        if not isinstance(outputs, Mapping) or outputs.get("loss") is not None:
            return
        files = _paths(trainer, batch["index"].tolist())
        self.skipped_steps.append(
            {"epoch": trainer.current_epoch, "step": trainer.global_step, "files": files}
        )
        logger.warning(
            "non-finite training loss: skipped the step on %s (%d skipped so far)",
            ", ".join(files),
            len(self.skipped_steps),
        )


def _paths(trainer: pl.Trainer, indices: list[int]) -> list[str]:
    """Paths of train-split rows; indices as text when the run has no such dataset."""
    datamodule = trainer.datamodule
    dataset = getattr(datamodule, "datasets", {}).get("train") if datamodule else None
    paths = getattr(dataset, "paths", None)
    if paths is None:
        return [f"train-split index {index}" for index in indices]
    return [paths[index] for index in indices]
