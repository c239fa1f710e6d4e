"""On SIGTERM (what SLURM and most schedulers send before a kill), save last.ckpt and stop.

Lightning's own handler sets `trainer.received_sigterm` and raises SIGTERMException (a
SystemExit) at the next batch boundary; this callback writes the checkpoint there, so
`vidlearn-train resume=RUN_DIR` continues from the interrupted batch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

logger = logging.getLogger(__name__)


class SigtermCheckpoint(pl.Callback):
    """Save `dirpath/last.ckpt` when training stops on SIGTERM."""

    def __init__(self, dirpath: str | Path) -> None:
        self.path = Path(dirpath) / "last.ckpt"

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path)
            logger.warning(
                "SIGTERM: saved %s; continue with resume=%s", self.path, self.path.parent.parent
            )
