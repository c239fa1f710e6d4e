"""Faults while training: a non-finite loss, a killed worker, a full disk, SIGTERM and a second run
in the same folder. Each ends with a clear message, and the last complete checkpoint survives."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

import vidlearn.callbacks.atomic_io as atomic_io
from vidlearn.callbacks import NonFiniteLossFiles, RunDirectoryInUseError, claim_run_dir
from vidlearn.cli.train import train
from vidlearn.data import datasets
from vidlearn.data.bad_files import StalledLoaderError, WatchedDataLoader
from vidlearn.data.clip_sampling import CenterClipSampler
from vidlearn.data.datasets import VideoClipDataset, collate
from vidlearn.data.transforms import ClipTransform
from vidlearn.tasks.base import NonFiniteLossError

TINY = [
    "data.size=32",
    "data.frames=6",
    "data.batch_size=4",
    "augment=none",
    "sampler=none",
    "test=false",
]


def fake_trainer(paths: list[str]) -> Any:
    """What NonFiniteLossFiles reads from a trainer: the train dataset's paths, epoch, step."""
    datamodule = SimpleNamespace(datasets={"train": SimpleNamespace(paths=paths)})
    return SimpleNamespace(datamodule=datamodule, current_epoch=1, global_step=7)


def test_nonfinite_loss_error_names_the_batch_files() -> None:
    error = NonFiniteLossError(float("nan"), [2, 0])
    NonFiniteLossFiles().on_exception(fake_trainer(["a.mp4", "b.mp4", "c.mp4"]), None, error)
    assert error.files == ["c.mp4", "a.mp4"]
    assert "on the batch with files ['c.mp4', 'a.mp4']" in str(error)
    assert "task.on_nonfinite_loss=skip" in str(error)


def test_skipped_nonfinite_step_is_recorded_with_its_files(
    caplog: pytest.LogCaptureFixture,
) -> None:
    callback = NonFiniteLossFiles()
    batch = {"index": torch.tensor([1])}
    trainer = fake_trainer(["a.mp4", "b.mp4"])
    callback.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5)}, batch, 0)
    callback.on_train_batch_end(trainer, None, {"loss": None}, batch, 1)  # the task skipped it
    assert callback.skipped_steps == [{"epoch": 1, "step": 7, "files": ["b.mp4"]}]
    assert "skipped the step on b.mp4 (1 skipped so far)" in caplog.text


def test_killed_dataloader_worker_fails_the_run_instead_of_hanging(
    compose_train: Callable[..., DictConfig], demo_videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_load = VideoClipDataset.load

    def die_in_worker(
        self: VideoClipDataset, index: int, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> torch.Tensor:
        if torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_load(
            self, index, rng, out
        )  # the pre-flight reads one sample in the main process

    monkeypatch.setattr(VideoClipDataset, "load", die_in_worker)
    cfg = compose_train(
        f"data.manifest={demo_videos}", *TINY, "data.num_workers=1", "+data.timeout=30"
    )
    # PyTorch names the worker either way, depending on which check notices first.
    killed = r"DataLoader worker \(pid(\(s\))? \d+\) (exited unexpectedly|is killed by signal)"
    with pytest.raises(RuntimeError, match=killed):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "summary.json").exists()


def test_disk_full_during_a_checkpoint_save_keeps_the_previous_one(
    compose_train: Callable[..., DictConfig], demo_videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = torch.save
    saves = []

    def fill_disk(checkpoint: dict, file: Any) -> None:
        saves.append(checkpoint["epoch"])
        if checkpoint["epoch"] == 0:
            return real_save(checkpoint, file)
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_io.torch, "save", fill_disk)
    cfg = compose_train(f"data.manifest={demo_videos}", *TINY, "trainer.max_epochs=2")
    with pytest.raises(OSError, match=r"could not write checkpoint .*last\.ckpt|epoch") as error:
        train(cfg)
    assert error.value.errno == errno.ENOSPC and "resume=" in str(error.value)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 0
    assert not list(folder.glob(".*.tmp"))  # no half-written temporaries left behind


class SigtermAtBatch(pl.Callback):
    """Send this process SIGTERM at one training batch, as a scheduler would."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_last_checkpoint_then_resume_completes(
    compose_train: Callable[..., DictConfig], demo_videos: Path, tmp_path: Path
) -> None:
    stopped, resumed = tmp_path / "stopped", tmp_path / "resumed"
    cfg = compose_train(
        f"data.manifest={demo_videos}",
        *TINY,
        "trainer.max_epochs=2",
        f"paths.output_dir={stopped}",
        f"+callbacks.sigterm._target_={__name__}.SigtermAtBatch",
        "+callbacks.sigterm.batch=2",
    )
    with pytest.raises(SIGTERMException):  # a SystemExit: the CLI exits 0 after the save
        train(cfg)
    checkpoint = torch.load(stopped / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2 and checkpoint["epoch"] == 0  # mid-epoch, not lost
    assert not (stopped / "summary.json").exists()
    summary = train(
        compose_train(
            f"data.manifest={demo_videos}",
            *TINY,
            "trainer.max_epochs=2",
            f"paths.output_dir={resumed}",
            f"resume={stopped}",
        )
    )
    assert summary["status"] == "ok" and summary["epochs"] == 2


def test_second_run_in_a_locked_folder_is_refused(tmp_path: Path) -> None:
    first = claim_run_dir(tmp_path / "run")
    with pytest.raises(RunDirectoryInUseError, match="being written by another running"):
        claim_run_dir(tmp_path / "run")
    first.release()
    claim_run_dir(tmp_path / "run").release()  # free again once the first run ends


def test_folder_holding_a_finished_run_is_refused_unless_resumed_in_place(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(RunDirectoryInUseError, match=rf"{run} already holds a run.*resume={run}"):
        claim_run_dir(run)
    claim_run_dir(run, resume=str(run)).release()


def test_train_into_a_finished_run_folder_leaves_it_intact(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    # Needs vidlearn/cli/train.py to call claim_run_dir(run_dir, cfg.resume) before writing.
    cfg = compose_train(f"data.manifest={demo_videos}", *TINY)
    train(cfg)
    run = Path(cfg.paths.output_dir)
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    with pytest.raises(RunDirectoryInUseError, match="already holds a run"):
        train(compose_train(f"data.manifest={demo_videos}", *TINY, "seed=1"))
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    assert json.loads((run / "summary.json").read_text())["status"] == "ok"


def test_a_loader_worker_stuck_on_a_file_names_it_and_data_timeout(
    odd_videos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = str(odd_videos["non_ascii_name"])
    stuck = shutil.copy(good, tmp_path / "stuck: ü.mp4")
    real_open = datasets.open_video

    def open_or_hang(path: str, backend: str = "decord", **options: Any) -> Any:
        if path == str(stuck):
            time.sleep(4)  # a decoder hanging on a corrupt file (shortened: the worker must end)
        return real_open(path, backend, **options)

    monkeypatch.setattr(datasets, "open_video", open_or_hang)
    transform = ClipTransform([], 32, [0.5] * 3, [0.25] * 3)
    dataset = VideoClipDataset(
        [good, str(stuck)], np.array([0, 1]), CenterClipSampler(4), transform, backend="pyav"
    )
    loader = WatchedDataLoader(dataset, batch_size=1, num_workers=1, timeout=1, collate_fn=collate)
    with pytest.raises(StalledLoaderError, match=r"for 1 s \(data\.timeout\)") as error:
        list(loader)
    assert f"worker 0: {stuck}" in str(error.value)
