"""Tiny models, batches and quiet Trainer runs for the task tests, offered as fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

Batch = dict[str, Tensor | list[str]]
FEATURES = 16  # inputs are (B, T=2, C=2, H=2, W=2) clips, 16 numbers each


class TinyNet(nn.Module):
    """backbone (Linear + LayerNorm) then head (Linear): (B, 2, 2, 2, 2) -> (B, num_outputs)."""

    def __init__(self, num_outputs: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Flatten(), nn.Linear(FEATURES, 32), nn.LayerNorm(32))
        self.head = nn.Linear(32, num_outputs)

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        return self.head(self.backbone(clips))  # (B, num_outputs)


def _make_batch(target: Tensor, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(len(target), 2, 2, 2, 2, generator=generator)  # (B, T, C, H, W)
    return {"input": inputs, "target": target, "index": torch.arange(len(target)), "skipped": []}


def _loader(batch: Batch, repeats: int = 1) -> DataLoader:
    return DataLoader([batch] * repeats, batch_size=None)  # the ready-made batch, `repeats` times


def _trainer(tmp_path, **options: object) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    return pl.Trainer(**{**defaults, **options})


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_net() -> type[TinyNet]:
    """The TinyNet class: `tiny_net(num_outputs)` builds one."""
    return TinyNet


@pytest.fixture
def make_batch() -> Callable[..., Batch]:
    """`make_batch(target)`: random clips, one per target; any 8 labels are linearly separable."""
    return _make_batch


@pytest.fixture
def fit(tmp_path) -> Callable[..., pl.Trainer]:
    """`fit(task, batch, repeats=1, val_batch=None, **trainer_options)`: train one epoch of
    `repeats` copies of `batch` (validating on `val_batch` if given); returns the Trainer."""

    def _fit(
        task: pl.LightningModule,
        batch: Batch,
        repeats: int = 1,
        val_batch: Batch | None = None,
        **trainer_options: object,
    ) -> pl.Trainer:
        trainer = _trainer(tmp_path, **trainer_options)
        val_loader = None if val_batch is None else _loader(val_batch)
        trainer.fit(task, _loader(batch, repeats), val_loader)
        return trainer

    return _fit


@pytest.fixture
def validate(tmp_path) -> Callable[[pl.LightningModule, Batch], dict[str, float]]:
    """`validate(task, batch)`: the metrics of one validation pass over `batch`."""

    def _validate(task: pl.LightningModule, batch: Batch) -> dict[str, float]:
        return _trainer(tmp_path).validate(task, _loader(batch), verbose=False)[0]

    return _validate
