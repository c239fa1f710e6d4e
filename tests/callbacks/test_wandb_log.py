"""logger=wandb: an offline training run, read back from the run file W&B writes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import compose_small_train
from wandb_records import OfflineRun, read_run

import vidlearn.callbacks.tracker as tracker_module
import vidlearn.cli.train
from vidlearn.callbacks.wandb_log import WandbTracker
from vidlearn.cli.train import train
from vidlearn.errors import ConfigError


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """W&B offline and quiet, its settings and caches in a temporary folder: no network, no
    files outside the test's folders."""
    home = tmp_path_factory.mktemp("wandb_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            patch.setenv(variable, str(home))
        yield patch


@pytest.fixture(scope="module")
def logged(
    tmp_path_factory: pytest.TempPathFactory, demo_videos: Path, offline: pytest.MonkeyPatch
) -> tuple[Path, Path, OfflineRun]:
    """A two-epoch run with logger=wandb: its run directory, W&B's run folder and record."""
    logs = tmp_path_factory.mktemp("wandb_logs")
    cfg = compose_small_train(
        logs,
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "trainer.max_epochs=2",
        "logger=wandb",
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    return run_dir, folder, read_run(folder)


def test_the_run_is_saved_in_its_directory_and_named_after_it(
    logged: tuple[Path, Path, OfflineRun],
) -> None:
    run_dir, _, run = logged
    assert run.name == run_dir.name
    assert run.project == "vidlearn"


def test_the_config_holds_the_resolved_config_under_override_keys(
    logged: tuple[Path, Path, OfflineRun],
) -> None:
    _, _, run = logged
    assert run.config["data.size"] == 32
    assert run.config["trainer.max_epochs"] == 2
    assert run.config["model._target_"] == "vidlearn.models.frame_gru.FrameGRU"


def test_validation_metrics_are_logged_every_epoch(logged: tuple[Path, Path, OfflineRun]) -> None:
    run_dir, _, run = logged
    logged_losses = [row["val/loss"] for row in run.history if "val/loss" in row]
    # the CSV log beside it: one row per epoch, then the best checkpoint's final validation
    per_epoch = pd.read_csv(run_dir / "metrics.csv")["val/loss"].dropna().tolist()
    assert len(per_epoch) == 3
    assert logged_losses == pytest.approx(per_epoch)


def test_the_summary_holds_the_final_figures_and_file(
    logged: tuple[Path, Path, OfflineRun],
) -> None:
    run_dir, folder, run = logged
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run.summary["summary/val/loss"] == pytest.approx(summary["metrics"]["val/loss"])
    assert run.summary["summary/num_train"] == summary["num_train"]
    assert (folder / "files" / "summary.json").read_text() == (run_dir / "summary.json").read_text()


def test_the_plots_are_logged_as_images(logged: tuple[Path, Path, OfflineRun]) -> None:
    _, folder, run = logged
    for plot in ("training_curves", "val_confusion"):
        assert run.summary[f"plots/{plot}/_type"] == "image-file"
        (image,) = (folder / "files" / "media" / "images" / "plots").glob(f"{plot}_*.png")
        assert image.stat().st_size > 1000


def test_a_missing_wandb_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # find_spec then reports it missing
    with pytest.raises(ConfigError, match=r"logger=wandb .*pip install 'vidlearn\[loggers\]'"):
        WandbTracker(str(tmp_path))


def test_a_disabled_run_takes_the_outcome_without_files(
    tmp_path: Path, offline: pytest.MonkeyPatch
) -> None:
    """WANDB_MODE=disabled: W&B keeps no run folder, so there is nowhere to copy files to."""
    (tmp_path / "summary.json").write_text(json.dumps({"metrics": {"val/loss": 0.5}}))
    tracker = WandbTracker(str(tmp_path), mode="disabled")
    tracker.log_config({"data": {"size": 32}})
    tracker.log_outcome(tmp_path, {"metrics": {"val/loss": 0.5}})
    assert not (tmp_path / "wandb").exists()


@pytest.mark.slow
def test_a_run_that_fails_after_training_is_finished_before_the_next(
    tmp_path: Path, demo_videos: Path, offline: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after fit (in the plots here) finishes the W&B run: left open, the next run in
    this process (a sweep's next job) would be logged into it."""
    import wandb

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(vidlearn.cli.train, "write_plots", broken)
    cfg = compose_small_train(
        tmp_path, f"data.manifest={demo_videos}", "data.size=32", "data.frames=4", "logger=wandb"
    )
    with pytest.raises(RuntimeError, match="disk full"):
        train(cfg)
    assert wandb.run is None


def test_a_resumed_run_continues_its_wandb_run(
    tmp_path: Path, demo_videos: Path, offline: pytest.MonkeyPatch
) -> None:
    """resume=RUN_DIR continues the W&B run it resumes (its id; offline, each part is a folder
    that `wandb sync` uploads into that one run); it started a run of another id before."""
    run = tmp_path / "run"
    common = (
        f"data.manifest={demo_videos}",
        "data.size=16",
        "data.frames=2",
        "scheduler=none",  # a decaying schedule refuses a resume over more epochs
        "logger=wandb",
        f"paths.output_dir={run}",
    )
    train(compose_small_train(tmp_path, *common, "trainer.max_epochs=1"))
    train(compose_small_train(tmp_path, *common, "trainer.max_epochs=2", f"resume={run}"))
    parts = sorted((run / "wandb").glob("offline-run-*"))
    assert len(parts) == 2
    assert len({folder.name.rsplit("-", 1)[1] for folder in parts}) == 1
    assert (
        json.loads((run / "trackers.json").read_text())["wandb"]["id"]
        == parts[0].name.rsplit("-", 1)[1]
    )


@pytest.mark.parametrize(
    ("run_dir", "sweep", "expected"),
    [
        ("run", None, {"id": "abc123", "tags": None}),  # in place: the same run
        ("next", None, {"id": "abc123", "tags": None}),  # one run continued in a new folder
        ("sweep/0", "sweep", {"id": None, "tags": ["resumed_from:abc123"]}),  # a job's fork
        ("run", "sweep", {"id": "abc123", "tags": None}),  # a job resuming in place
    ],
)
def test_a_resume_continues_its_wandb_run_unless_a_sweep_job_forks_it(
    tmp_path: Path,
    offline: pytest.MonkeyPatch,
    run_dir: str,
    sweep: str | None,
    expected: dict,
) -> None:
    """Every job of a sweep resuming one checkpoint continued its W&B run (the same id)."""
    offline.setattr(tracker_module, "sweep_group", lambda: sweep)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trackers.json").write_text(
        json.dumps({"wandb": {"id": "abc123", "project": "vidlearn"}})
    )
    tracker = WandbTracker(str(tmp_path / run_dir), resume=str(tmp_path / "run"))
    assert {key: tracker._wandb_init.get(key) for key in expected} == expected  # wandb.init's
