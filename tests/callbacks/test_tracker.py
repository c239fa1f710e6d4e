"""What every tracker logger records beyond Lightning's metrics: flat config keys, summary
figures, run names and groups; and the tracker libraries stay unimported by runs without them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from vidlearn.callbacks.tracker import (
    Tracker,
    failed_on_error,
    flatten,
    record_run,
    resumed_run,
    run_name,
    summary_figures,
    sweep_group,
)

KEYS = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)
LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
CONFIGS = st.recursive(
    st.dictionaries(KEYS, LEAVES, max_size=3),
    lambda children: st.dictionaries(KEYS, children | st.lists(children, max_size=2), max_size=3),
    max_leaves=12,
)


def test_flatten_gives_the_keys_of_overrides() -> None:
    config = {"data": {"size": 32, "mean": [0.5, 0.5]}, "augment": {"transforms": [{"p": 0.5}]}}
    assert flatten(config) == {
        "data.size": 32,
        "data.mean": [0.5, 0.5],
        "augment.transforms.0.p": 0.5,
    }


@given(CONFIGS)
def test_every_flat_key_selects_its_value_in_the_config(config: dict) -> None:
    """Planted bug caught: every list item flattened under index 0 (`a.0.p` for `a.1.p`)."""
    nested = OmegaConf.create(config)
    for key, value in flatten(config).items():
        assert OmegaConf.select(nested, key) == value


class RecordingTracker(Tracker):
    """A tracker that records how its run was finalized."""

    def __init__(self) -> None:
        self.statuses: list[str] = []

    def finalize(self, status: str) -> None:
        self.statuses.append(status)

    def log_outcome(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        self.finalize("success")

    def run_entry(self) -> dict[str, str]:
        return {"id": "recording"}


def test_an_error_in_the_block_marks_the_runs_failed_and_propagates() -> None:
    tracker = RecordingTracker()
    with pytest.raises(RuntimeError, match="disk full"), failed_on_error([tracker]):
        raise RuntimeError("disk full")
    assert tracker.statuses == ["failed"]


def test_a_block_that_succeeds_leaves_the_runs_alone() -> None:
    tracker = RecordingTracker()
    with failed_on_error([tracker]):
        pass
    assert tracker.statuses == []


def test_summary_figures_are_the_metrics_and_counts_under_summary() -> None:
    summary = {
        "status": "ok",
        "metrics": {"val/loss": 0.5, "test/accuracy": 1.0},
        "epochs": 3,
        "num_train": 20,
        "classes": ["a", "b"],
        "skipped": [],
        "has_test": True,
    }
    assert summary_figures(summary) == {
        "summary/val/loss": 0.5,
        "summary/test/accuracy": 1.0,
        "summary/epochs": 3.0,
        "summary/num_train": 20.0,
    }


def test_outside_a_multirun_there_is_no_group_and_the_run_keeps_its_name() -> None:
    assert sweep_group() is None
    assert run_name(Path("/logs/train/2026-01-01_10-00-00"), None) == "2026-01-01_10-00-00"
    assert run_name(Path("/logs/multirun/2026-01-01_10-00-00/3"), "2026-01-01_10-00-00") == (
        "2026-01-01_10-00-00/3"
    )


def test_wandb_runs_offline_unless_wandb_mode_says_otherwise(
    compose_train: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert compose_train("logger=wandb").logger.wandb.mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert compose_train("logger=wandb").logger.wandb.mode == "online"


def test_mlflow_stores_in_sqlite_under_the_log_dir_beside_the_csv_log(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("logger=mlflow", "paths.log_dir=/logs")
    assert cfg.logger.mlflow.tracking_uri == "sqlite:////logs/mlflow.db"
    assert "csv" in cfg.logger  # metrics.csv draws the training curves


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning
def test_training_imports_no_tracker_library() -> None:
    """mlflow and wandb take seconds to import; a run that logs to neither never pays it."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, vidlearn.cli.train; print(*sorted({'mlflow', 'wandb'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""


def test_a_resume_reads_the_run_its_directory_or_checkpoint_recorded(tmp_path: Path) -> None:
    record_run(tmp_path / "run", "mlflow", {"run_id": "abc", "tracking_uri": "sqlite:///m.db"})
    record_run(tmp_path / "run", "wandb", {"id": "xyz", "project": "vidlearn"})
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert resumed_run(str(tmp_path / "run"), "mlflow", ("run_id",))["run_id"] == "abc"
    assert resumed_run(str(checkpoint), "wandb", ("id",)) == {"id": "xyz", "project": "vidlearn"}
    assert resumed_run(None, "mlflow", ("run_id",)) is None
    assert (
        resumed_run(str(tmp_path / "other"), "mlflow", ("run_id",)) is None
    )  # a run that logged to none


CORRUPT_RUNS = {
    "empty": "",
    "cut short": '{"mlflow": {"run_id": "ab',
    "a list": "[1, 2]",
    "an entry that is not a mapping": '{"mlflow": "abc"}',
    "an entry without its id": '{"mlflow": {"tracking_uri": "sqlite:///m.db"}}',
    "an id that is not text": '{"mlflow": {"run_id": 7, "tracking_uri": "sqlite:///m.db"}}',
}


@pytest.mark.parametrize("text", CORRUPT_RUNS.values(), ids=CORRUPT_RUNS.keys())
def test_a_resume_over_an_unreadable_trackers_json_logs_to_a_new_run_with_a_warning(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "trackers.json").write_text(text)
    assert resumed_run(str(tmp_path), "mlflow", ("run_id", "tracking_uri")) is None
    assert "trackers.json" in caplog.text and "new mlflow run" in caplog.text


@pytest.mark.parametrize("text", ["", "[1, 2]", '{"wandb": {"id": "x", "proj'])
def test_recording_a_run_replaces_an_unreadable_trackers_json(tmp_path: Path, text: str) -> None:
    (tmp_path / "trackers.json").write_text(text)
    record_run(tmp_path, "mlflow", {"run_id": "abc", "tracking_uri": "sqlite:///m.db"})
    assert resumed_run(str(tmp_path), "mlflow", ("run_id",))["run_id"] == "abc"
