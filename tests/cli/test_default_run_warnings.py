"""The default `vidlearn-train` prints no warning the user cannot act on.

The run is the default command's (conf/train.yaml with no choices changed, started the way the
console script starts it, with `silence_third_party_noise`), shrunk to a few batches of the tiny
demo videos. Any warning, raised or logged at WARNING, that is not on ALLOWED fails the test.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.quiet import silence_third_party_noise
from vidlearn.cli.train import train
from vidlearn.data.datamodules import ImageDataModule, VideoDataModule

# Warnings the default run may show, each with why it stays: none so far. A new entry needs a
# reason the user cannot or need not act on it, and vidlearn cannot avoid it.
ALLOWED: tuple[str, ...] = ()


def _allowed(text: str) -> bool:
    return any(re.search(pattern, text) for pattern in ALLOWED)


def test_the_default_run_shows_no_warning(
    tmp_path: Path, demo_videos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                f"data.manifest={demo_videos}",  # the demo videos, made smaller
                "trainer.max_epochs=1",
                "+trainer.limit_train_batches=2",
                "+trainer.limit_val_batches=1",
                "+trainer.limit_test_batches=1",
                "trainer.log_every_n_steps=1",  # the shrunk epoch has fewer steps than 10
            ],
        )
    with warnings.catch_warnings(record=True) as raised, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        silence_third_party_noise()  # as console_main does before the task
        summary = train(cfg)
    assert summary["status"] == "ok"
    shown = [f"{w.category.__name__}: {w.message}" for w in raised]
    shown += [
        f"log {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING
    ]
    assert [text for text in shown if not _allowed(text)] == []


@pytest.mark.parametrize("datamodule", [VideoDataModule, ImageDataModule])
def test_datamodules_leave_on_after_batch_transfer_to_the_task(datamodule: type) -> None:
    """Why Lightning's notice about the task's hook is silenced (vidlearn.cli.quiet)."""
    assert datamodule.on_after_batch_transfer is pl.LightningDataModule.on_after_batch_transfer
