"""BadFileMonitor: probe and run-time skips count together against data.max_bad_fraction, and
every skipped file is listed with its stage, its path exactly as the manifest wrote it."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from vidlearn.data.bad_files import BadFileMonitor, TooManyBadFilesError
from vidlearn.data.datasets import SkipRecord


def _trainer_with_train_paths(paths: list[str]) -> SimpleNamespace:
    return SimpleNamespace(
        datamodule=SimpleNamespace(datasets={"train": SimpleNamespace(paths=paths)}),
        world_size=1,
    )


def _probed(path: str = "gone.mp4") -> pd.DataFrame:
    return pd.DataFrame({"path": [path], "split": ["train"], "reason": ["file is empty"]})


def test_probe_and_run_time_skips_count_together_against_max_bad_fraction() -> None:
    monitor = BadFileMonitor(max_bad_fraction=0.2, probe_skipped=_probed())
    trainer = _trainer_with_train_paths([f"{i}.mp4" for i in range(9)])
    batch = {"skipped": [SkipRecord("0.mp4", "truncated")]}
    monitor.on_train_batch_start(trainer, None, batch, 0)  # 2 of 10
    with pytest.raises(TooManyBadFilesError, match="3 of 10 train files"):
        monitor.on_train_batch_start(trainer, None, {"skipped": [SkipRecord("1.mp4", "x")]}, 1)


def test_records_list_probe_skips_then_run_skips_with_their_stage() -> None:
    monitor = BadFileMonitor(max_bad_fraction=1.0, probe_skipped=_probed())
    batch = {"skipped": [SkipRecord("0.mp4", "truncated")]}
    monitor.on_train_batch_start(_trainer_with_train_paths(["0.mp4"]), None, batch, 0)
    assert monitor.records == [
        {"path": "gone.mp4", "reason": "file is empty", "stage": "probe"},
        {"path": "0.mp4", "reason": "truncated", "stage": "run"},
    ]


def test_a_path_holding_a_colon_counts_against_its_split_and_is_listed_exactly() -> None:
    path = "/data/take 2: ü/clip: 日本.mp4"
    monitor = BadFileMonitor(max_bad_fraction=0.0)
    batch = {"skipped": [SkipRecord(path, "file is empty")]}
    with pytest.raises(TooManyBadFilesError, match="1 of 2 train files"):
        monitor.on_train_batch_start(_trainer_with_train_paths([path, "b.mp4"]), None, batch, 0)
    assert monitor.records == [{"path": path, "reason": "file is empty", "stage": "run"}]


@pytest.fixture
def two_ranks(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A stand-in for a 2-process DDP group: rank 1 met `rank1.mp4`; returns a 2-rank trainer."""

    def all_gather_object(gathered: list, records: list) -> None:
        gathered[:] = [records, [SkipRecord("rank1.mp4", "truncated")]]

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    trainer = _trainer_with_train_paths([f"{i}.mp4" for i in range(8)] + ["rank0.mp4", "rank1.mp4"])
    trainer.world_size = 2
    return trainer


def test_records_hold_every_ranks_run_time_skips_after_an_epoch(two_ranks: SimpleNamespace) -> None:
    monitor = BadFileMonitor(max_bad_fraction=1.0)
    batch = {"skipped": [SkipRecord("rank0.mp4", "file is empty")]}
    monitor.on_train_batch_start(two_ranks, None, batch, 0)
    monitor.on_train_epoch_end(two_ranks, None)
    assert [record["path"] for record in monitor.records] == ["rank0.mp4", "rank1.mp4"]


def test_every_ranks_skips_count_against_max_bad_fraction(two_ranks: SimpleNamespace) -> None:
    monitor = BadFileMonitor(max_bad_fraction=0.1)
    batch = {"skipped": [SkipRecord("rank0.mp4", "file is empty")]}
    monitor.on_train_batch_start(two_ranks, None, batch, 0)  # 1 of 10 on this rank: allowed
    with pytest.raises(TooManyBadFilesError, match="2 of 10 train files"):
        monitor.on_train_epoch_end(two_ranks, None)
