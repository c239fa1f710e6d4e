"""Count the files a run had to skip, report them, and stop when there are too many.

Files are skipped at two stages: "probe" (found unusable before training, their rows dropped;
see vidlearn.data.probe) and "run" (a dataset replaced an unreadable file by another sample and
attached a SkipRecord to the batch, `batch["skipped"]`). This callback gathers the run-time
records from every split and, under DDP, from every rank at each epoch's end (each rank reads
other files); `data.max_bad_fraction` bounds both stages together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vidlearn.data.datasets import ReadingBoard, SampleDataset, SkipRecord
from vidlearn.data.transforms import NORMALISED, BatchNormalisation
from vidlearn.errors import UserError

logger = logging.getLogger(__name__)


class TooManyBadFilesError(UserError, RuntimeError):
    """More than `max_bad_fraction` of a split's files could not be read."""


class StalledLoaderError(UserError, RuntimeError):
    """The data loader gave no batch within `data.timeout` seconds; names the files being read."""


class WatchedDataLoader(DataLoader):
    """A DataLoader whose timeout names the file each busy worker was reading (a hung decoder:
    decord is reported to hang on some corrupt files), as a StalledLoaderError.

    `normalise`: applied to each batch's `input` (with its `peak`, which it then drops) in the
    main process, for a dataset whose workers hand over uint8 clips (a quarter of the bytes).
    """

    def __init__(self, *args: Any, normalise: BatchNormalisation | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.normalise = normalise  # named as the argument: Lightning rebuilds loaders by name

    def __iter__(self) -> Iterator[Any]:
        batches = self._watched()
        return batches if self.normalise is None else _normalised(batches, self.normalise)

    def _watched(self) -> Iterator[Any]:
        dataset = self.dataset
        if self.num_workers == 0 or self.timeout <= 0 or not isinstance(dataset, SampleDataset):
            return super().__iter__()
        if dataset.board is None or len(dataset.board.rows) < self.num_workers:
            dataset.board = ReadingBoard(self.num_workers)  # before the workers start
        return _naming_stalls(super().__iter__(), dataset, dataset.board, self.timeout)


def _normalised(batches: Iterator[dict], normalise: BatchNormalisation) -> Iterator[dict]:
    for batch in batches:
        peaks = batch.pop("peak", None)  # (B, T), with per-frame max normalisation
        if batch.pop(NORMALISED, False):
            yield batch
        else:
            yield {**batch, "input": normalise(batch["input"], peaks)}


def _naming_stalls(
    batches: Iterator[Any], dataset: SampleDataset, board: ReadingBoard, timeout: float
) -> Iterator[Any]:
    """`batches`, with torch's "DataLoader timed out" turned into a StalledLoaderError."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except RuntimeError as error:
            stuck = board.reading()
            if "DataLoader timed out" not in str(error) or not stuck:
                raise
            files = "\n".join(f"  worker {w}: {dataset.paths[row]}" for w, row in stuck.items())
            raise StalledLoaderError(
                f"no batch came from the data loader for {timeout:g} s (data.timeout) while its "
                f"workers were reading:\n{files}\nA file that hangs its decoder is probably "
                "corrupt: re-encode or remove it (data.probe=true checks every file under "
                "data.probe_timeout before training), or raise data.timeout if reading is only slow."
            ) from error
        yield batch


def check_bad_share(
    split: str, bad: Mapping[str, str], num_files: int, max_bad_fraction: float
) -> None:
    """TooManyBadFilesError listing `bad` (path -> reason) when they are over the split's share."""
    if len(bad) <= max_bad_fraction * num_files:
        return
    listing = "\n".join(f"  {path}: {reason}" for path, reason in list(bad.items())[:50])
    raise TooManyBadFilesError(
        f"{len(bad)} of {num_files} {split} files could not be read, more than "
        f"data.max_bad_fraction={max_bad_fraction}:\n{listing}\n"
        "Fix or remove these files (or raise data.max_bad_fraction)."
    )


class BadFileMonitor(pl.Callback):
    """Collect skipped files; raise TooManyBadFilesError above `max_bad_fraction` of a split.

    `probe_skipped` (columns path, split, reason) are the files the probe dropped before
    training: they count towards their split's share and lead the `records`.
    """

    def __init__(
        self, max_bad_fraction: float = 0.01, probe_skipped: pd.DataFrame | None = None
    ) -> None:
        self.max_bad_fraction = max_bad_fraction
        self.probe_skipped = (
            probe_skipped
            if probe_skipped is not None
            else pd.DataFrame(columns=["path", "split", "reason"])
        )
        self.skipped: dict[str, SkipRecord] = {}  # path -> its first record, at run time

    @property
    def records(self) -> list[dict[str, str]]:
        """Skipped files as `{"path", "reason", "stage"}`: the probe's, then the run's as first seen."""
        probed = [
            SkipRecord(str(path), str(reason), "probe")
            for path, reason in zip(
                self.probe_skipped["path"], self.probe_skipped["reason"], strict=True
            )
        ]
        return [record._asdict() for record in probed + list(self.skipped.values())]

    def _collect(self, trainer: pl.Trainer, batch: Any, split: str) -> None:
        if not isinstance(batch, dict):
            return
        known = len(self.skipped)
        for record in batch.get("skipped", []):
            self.skipped.setdefault(record.path, record)
        if len(self.skipped) > known:  # the share of bad files only grows with a new one
            self._check(trainer, split)

    def _gather(self, trainer: pl.Trainer) -> None:
        """Merge every DDP rank's run-time records, in rank order: each rank reads other files."""
        if getattr(trainer, "world_size", 1) < 2 or not torch.distributed.is_initialized():
            return
        gathered: list[list[SkipRecord]] = [[] for _ in range(trainer.world_size)]
        torch.distributed.all_gather_object(gathered, list(self.skipped.values()))
        merged: dict[str, SkipRecord] = {}
        for records in gathered:
            for record in records:
                merged.setdefault(record.path, record)
        self.skipped = merged

    def _check(self, trainer: pl.Trainer, split: str) -> None:
        """TooManyBadFilesError when the probe's and the run's skips exceed `split`'s share."""
        dataset = trainer.datamodule.datasets.get(split) if trainer.datamodule is not None else None
        if dataset is None:
            return
        paths = set(dataset.paths)
        dropped = self.probe_skipped[self.probe_skipped["split"] == split]
        bad = dict(zip(dropped["path"], dropped["reason"], strict=True))
        bad.update((path, record.reason) for path, record in self.skipped.items() if path in paths)
        check_bad_share(split, bad, len(paths) + len(dropped), self.max_bad_fraction)

    def _end_epoch(self, trainer: pl.Trainer, split: str) -> None:
        # Every rank runs this hook, so the collective gather is safe here; after the run's last
        # stage every rank (rank 0 writes summary.json) holds all the ranks' records.
        self._gather(trainer)
        self._check(trainer, split)

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

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end_epoch(trainer, "train")

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end_epoch(trainer, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end_epoch(trainer, "test")
