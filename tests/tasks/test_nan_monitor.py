"""A NaN monitored value (an undefined metric) is never the best checkpoint and never stops
training by itself, with the checkpoint and early-stopping callbacks of conf/callbacks."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from vidlearn.cli.config import CONF_DIR

NAN = float("nan")


class ScriptedMonitor(pl.LightningModule):
    """Logs `val/auroc` = `values[epoch]` at each validation; trains nothing useful."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch: torch.Tensor, batch_index: int) -> torch.Tensor:
        return self.layer(batch).sum()

    def validation_step(self, batch: torch.Tensor, batch_index: int) -> None:
        self.log("val/auroc", self.values[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(values: list[float], tmp_path: Path) -> pl.Trainer:
    """Fit len(values) epochs with the project's model_checkpoint and early_stopping callbacks."""
    nodes = OmegaConf.load(CONF_DIR / "callbacks" / "default.yaml")
    settings = {"monitor": "val/auroc", "mode": "max"}
    checkpoint = instantiate(nodes.model_checkpoint, dirpath=str(tmp_path), **settings)
    stopping = instantiate(nodes.early_stopping, patience=len(values), **settings)
    trainer = pl.Trainer(
        max_epochs=len(values),
        callbacks=[checkpoint, stopping],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    loader = DataLoader(torch.ones(1, 1), batch_size=1)
    trainer.fit(ScriptedMonitor(values), loader, loader)
    return trainer


def test_a_nan_epoch_is_never_kept_as_the_best_checkpoint(tmp_path: Path) -> None:
    trainer = _fit([NAN, 0.6, NAN], tmp_path)
    assert trainer.checkpoint_callback.best_model_score == 0.6
    assert Path(trainer.checkpoint_callback.best_model_path).name == "epoch001.ckpt"


def test_early_stopping_counts_a_nan_as_no_improvement_rather_than_stopping(
    tmp_path: Path,
) -> None:
    """Lightning's check_finite=True stopped the run at the first NaN (a one-class val split)."""
    trainer = _fit([NAN, NAN, 0.6], tmp_path)
    assert trainer.current_epoch == 3 and not trainer.should_stop
