"""logger=mlflow: a training run lands in a SQLite store, read back with MLflow's own client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import compose_small_train
from hypothesis import given
from hypothesis import strategies as st
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import _validate_metric_name

import vidlearn.callbacks.tracker as tracker_module
import vidlearn.cli.train
from vidlearn.callbacks.mlflow_log import MLflowTracker, mlflow_name
from vidlearn.cli.train import train
from vidlearn.errors import ConfigError
from vidlearn.tasks.multiclass import MulticlassTask


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, demo_videos: Path) -> tuple[Path, Run]:
    """A two-epoch run with logger=mlflow: its run directory and the MLflow run in the store."""
    logs = tmp_path_factory.mktemp("mlflow_logs")
    cfg = compose_small_train(
        logs,
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "trainer.max_epochs=2",
        "logger=mlflow",
        f"paths.log_dir={logs}",
    )
    train(cfg)
    client = MlflowClient(tracking_uri=f"sqlite:///{logs}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("vidlearn").experiment_id])
    return Path(cfg.paths.output_dir), run


def client_of(run_dir: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{run_dir.parent}/mlflow.db")


def test_the_run_is_named_after_its_directory_and_finished(logged: tuple[Path, Run]) -> None:
    run_dir, run = logged
    assert run.info.run_name == run_dir.name
    assert run.info.status == "FINISHED"


def test_params_hold_the_resolved_config_under_override_keys(logged: tuple[Path, Run]) -> None:
    _, run = logged
    assert run.data.params["data.size"] == "32"
    assert run.data.params["trainer.max_epochs"] == "2"
    assert run.data.params["model._target_"] == "vidlearn.models.frame_gru.FrameGRU"
    assert run.data.params["augment.transforms.0._target_"] == "albumentations.Affine"


def test_validation_metrics_are_logged_every_epoch(logged: tuple[Path, Run]) -> None:
    run_dir, run = logged
    history = client_of(run_dir).get_metric_history(run.info.run_id, "val/loss")
    # the CSV log beside it: one row per epoch, then the best checkpoint's final validation
    per_epoch = pd.read_csv(run_dir / "metrics.csv")["val/loss"].dropna().tolist()
    assert len(per_epoch) == 3
    assert [m.value for m in history] == pytest.approx(per_epoch)


def test_summary_figures_are_metrics(logged: tuple[Path, Run]) -> None:
    run_dir, run = logged
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run.data.metrics["summary/val/loss"] == pytest.approx(summary["metrics"]["val/loss"])
    assert run.data.metrics["summary/test/accuracy"] == pytest.approx(
        summary["metrics"]["test/accuracy"]
    )
    assert run.data.metrics["summary/num_train"] == summary["num_train"]


def test_summary_config_and_plots_are_artifacts(logged: tuple[Path, Run], tmp_path: Path) -> None:
    run_dir, run = logged
    client = client_of(run_dir)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/training_curves.png",
        "plots/val_confusion.png",
    }
    summary = client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))
    assert Path(summary).read_text() == (run_dir / "summary.json").read_text()
    assert "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_artifacts_lie_under_the_log_directory(logged: tuple[Path, Run]) -> None:
    run_dir, run = logged
    assert run.info.artifact_uri == (run_dir.parent / "mlartifacts").as_uri() + (
        f"/{run.info.run_id}/artifacts"
    )


def test_a_run_the_preflight_refuses_leaves_no_run_open(
    tmp_path: Path, demo_videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise ConfigError("model=x needs data.frames >= 8")

    monkeypatch.setattr(vidlearn.cli.train, "preflight", refuse)
    cfg = compose_small_train(
        tmp_path, f"data.manifest={demo_videos}", "logger=mlflow", f"paths.log_dir={tmp_path}"
    )
    with pytest.raises(ConfigError, match="needs data.frames"):
        train(cfg)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert client.search_runs([client.get_experiment_by_name("vidlearn").experiment_id]) == []


def test_a_missing_mlflow_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # find_spec then reports it missing
    with pytest.raises(ConfigError, match=r"logger=mlflow .*pip install 'vidlearn\[loggers\]'"):
        MLflowTracker(str(tmp_path), f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path))


WRITER = """
import sys
import vidlearn.cli.train
from vidlearn.callbacks.mlflow_log import MLflowTracker, mlflow_name
logs = sys.argv[1]
tracker = MLflowTracker(logs + "/" + sys.argv[2], f"sqlite:///{logs}/mlflow.db", logs + "/art")
for step in range(20):
    tracker.log_metrics({"val/loss": float(step)}, step=step)
tracker.finalize("success")
"""


@pytest.mark.slow
def test_runs_started_at_once_share_a_new_store(tmp_path: Path) -> None:
    """Three processes open one new SQLite store together (as the runs of a parallel sweep do):
    without the store lock, MLflow's table creation in one fails on the others' columns."""
    runs = ["a", "b", "c"]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), name], stderr=subprocess.PIPE, text=True
        )
        for name in runs
    ]
    errors = [writer.communicate(timeout=300)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0], errors
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    found = client.search_runs([client.get_experiment_by_name("vidlearn").experiment_id])
    assert sorted(run.info.run_name for run in found) == runs
    assert all(len(client.get_metric_history(r.info.run_id, "val/loss")) == 20 for r in found)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store made once (creating its tables takes seconds), for trackers used directly."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


def test_class_names_of_any_script_keep_their_own_metric(tmp_path: Path, store: str) -> None:
    """Class-wise metrics (`val/recall/<class>`) of classes named in any script or with
    punctuation are stored, each under its own name (Lightning's MLflow logger strips non-ASCII:
    `猫` became `val/recall/`, which MLflow refuses, and `café` became `caf`)."""
    tracker = MLflowTracker(str(tmp_path / "run"), store, str(tmp_path), "class_names")
    names = ["val/recall/猫", "val/recall/café", "val/recall/a+b", "val/recall/.."]
    tracker.log_metrics({name: float(i) for i, name in enumerate(names)}, step=0)
    tracker.finalize("success")
    stored = MlflowClient(tracking_uri=store).get_run(tracker.run_id).data.metrics
    assert stored == {
        "val/recall/猫": 0.0,
        "val/recall/café": 1.0,
        "val/recall/a_b": 2.0,
        "val/recall/_": 3.0,
    }


@given(st.text(max_size=300))
def test_every_class_name_gives_a_metric_name_mlflow_accepts(name: str) -> None:
    """Planted bug caught: empty path segments kept (`val/recall/` for an empty class name)."""
    _validate_metric_name(mlflow_name(f"val/recall/{name}"))


@pytest.mark.slow
def test_a_run_that_fails_after_training_is_marked_failed(
    tmp_path: Path, demo_videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after fit (in the plots here) leaves the run FAILED, not FINISHED as Lightning
    marks it after each fit and test."""

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(vidlearn.cli.train, "write_plots", broken)
    cfg = compose_small_train(
        tmp_path,
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=4",
        "logger=mlflow",
        f"paths.log_dir={tmp_path}",
    )
    with pytest.raises(RuntimeError, match="disk full"):
        train(cfg)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("vidlearn").experiment_id])
    assert run.info.status == "FAILED"


@pytest.mark.slow
def test_a_run_that_fails_while_training_is_marked_failed(
    tmp_path: Path, demo_videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a log folder that does not exist yet, with a space in its path."""

    def broken(*args: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(MulticlassTask, "training_step", broken)
    cfg = compose_small_train(
        tmp_path,
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=4",
        "logger=mlflow",
        f"paths.log_dir={tmp_path / 'no' / 'such folder'}",
    )
    with pytest.raises(RuntimeError, match="out of memory"):
        train(cfg)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/no/such folder/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("vidlearn").experiment_id])
    assert run.info.status == "FAILED"


def test_a_deleted_experiment_is_refused_naming_the_key_and_the_way_back(
    tmp_path: Path, store: str
) -> None:
    """MLflow keeps a deleted experiment's name: creating it again failed with an SQL error."""
    client = MlflowClient(tracking_uri=store)
    client.delete_experiment(client.create_experiment("deleted"))
    with pytest.raises(
        ConfigError, match=r"logger.mlflow.experiment_name=deleted .*mlflow experiments restore"
    ):
        MLflowTracker(str(tmp_path / "run"), store, str(tmp_path), "deleted")


def test_long_config_values_are_kept_to_mlflows_own_limit(tmp_path: Path, store: str) -> None:
    """A 1000-character value (a deep manifest path, a long class list) is stored whole, not cut
    at the 250 characters of Lightning's logger; MLflow itself keeps up to 6000."""
    tracker = MLflowTracker(str(tmp_path / "run"), store, str(tmp_path), "long_values")
    manifest = "/data/" + "é" * 994
    tracker.log_config({"data": {"manifest": manifest, "mean": None}, "notes": "x" * 7000})
    tracker.finalize("success")
    params = MlflowClient(tracking_uri=store).get_run(tracker.run_id).data.params
    assert params["data.manifest"] == manifest
    assert params["data.mean"] == "None"
    assert params["notes"] == "x" * 6000


def test_a_resumed_run_continues_its_mlflow_run(tmp_path: Path, demo_videos: Path) -> None:
    """resume=RUN_DIR logs into the run it continues, read back from the SQLite store: one run
    with the epochs of both parts; it opened a second run before. The config values the resume
    changed are tags beside the first values (MLflow keeps a parameter's first value)."""
    run = tmp_path / "run"
    common = (
        f"data.manifest={demo_videos}",
        "data.size=16",
        "data.frames=2",
        "scheduler=none",  # a decaying schedule refuses a resume over more epochs
        "logger=mlflow",
        f"paths.log_dir={tmp_path}",
        f"paths.output_dir={run}",
    )
    train(compose_small_train(tmp_path, *common, "trainer.max_epochs=1"))
    train(compose_small_train(tmp_path, *common, "trainer.max_epochs=2", f"resume={run}"))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (found,) = client.search_runs([client.get_experiment_by_name("vidlearn").experiment_id])
    # each part logs its epochs, then its final validation and test at the epoch it ended on:
    # the first part 0 and 1, the second 1 and 2
    epochs = {m.value for m in client.get_metric_history(found.info.run_id, "epoch")}
    assert epochs == {0.0, 1.0, 2.0}
    assert found.info.status == "FINISHED"
    assert found.data.params["trainer.max_epochs"] == "1"
    assert found.data.tags["resumed.trainer.max_epochs"] == "2"


def test_a_resume_whose_mlflow_run_was_deleted_logs_to_a_new_run(
    tmp_path: Path, store: str
) -> None:
    run_dir = tmp_path / "run"
    first = MLflowTracker(str(run_dir), store, str(tmp_path), "deleted_runs")
    first.log_config({"seed": 0})
    first.finalize("success")
    MlflowClient(tracking_uri=store).delete_run(first.run_id)
    resumed = MLflowTracker(str(run_dir), store, str(tmp_path), "deleted_runs", resume=str(run_dir))
    resumed.log_config({"seed": 0})
    resumed.finalize("success")
    assert resumed.run_id != first.run_id
    assert MlflowClient(tracking_uri=store).get_run(resumed.run_id).data.params == {"seed": "0"}


def test_an_empty_experiment_name_is_refused_naming_the_key(tmp_path: Path, store: str) -> None:
    """Failed before the fix: MLflow's MlflowException ("Invalid experiment name") escaped the
    constructor, which the CLI reports as a vidlearn bug with a traceback."""
    with pytest.raises(ConfigError, match=r"logger\.mlflow\.experiment_name=''"):
        MLflowTracker(str(tmp_path / "run"), store, str(tmp_path), "")


def test_a_store_mlflow_cannot_open_is_refused_naming_the_key(tmp_path: Path) -> None:
    """Failed before the fix: MLflow's exception for an unknown URI scheme escaped."""
    with pytest.raises(ConfigError, match=r"logger\.mlflow\.tracking_uri='foo://x'"):
        MLflowTracker(str(tmp_path / "run"), "foo://x", str(tmp_path))


def test_sweep_jobs_resuming_one_run_each_open_a_run_tagged_with_its_id(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jobs of a sweep that all resume one run's checkpoint (`-m resume=RUN ...`) fork it:
    each logs to a new MLflow run tagged `resumed_from=<its run id>`. They all continued the
    resumed run before, interleaving their metrics in it."""
    parent = tmp_path / "run"
    first = MLflowTracker(str(parent), store, str(tmp_path), "forks")
    first.log_config({"seed": 0})
    first.finalize("success")
    monkeypatch.setattr(tracker_module, "sweep_group", lambda: "sweep")  # the jobs of a multirun
    jobs = []
    for job in ("0", "1"):
        tracker = MLflowTracker(
            str(tmp_path / "sweep" / job), store, str(tmp_path), "forks", resume=str(parent)
        )
        tracker.log_config({"seed": int(job)})
        tracker.finalize("success")
        jobs.append(tracker.run_id)
    client = MlflowClient(tracking_uri=store)
    assert len({first.run_id, *jobs}) == 3
    assert [client.get_run(job).data.tags.get("resumed_from") for job in jobs] == [first.run_id] * 2
    assert "resumed_from" not in client.get_run(first.run_id).data.tags


def test_a_resume_in_place_continues_its_mlflow_run_untagged(tmp_path: Path, store: str) -> None:
    run = tmp_path / "run"
    first = MLflowTracker(str(run), store, str(tmp_path), "in_place")
    first.log_config({"seed": 0})
    first.finalize("success")
    resumed = MLflowTracker(
        str(run), store, str(tmp_path), "in_place", resume=str(run / "checkpoints" / "last.ckpt")
    )
    assert resumed.run_id == first.run_id
    assert "resumed_from" not in MlflowClient(tracking_uri=store).get_run(first.run_id).data.tags


def test_a_single_run_resumed_into_a_new_folder_continues_its_mlflow_run(
    tmp_path: Path, store: str
) -> None:
    """`resume=RUN_DIR` alone (a requeued job: a new run folder by default) is the same run
    going on, so it logs into the same MLflow run, untagged."""
    first = MLflowTracker(str(tmp_path / "run"), store, str(tmp_path), "requeued")
    first.log_config({"seed": 0})
    first.finalize("success")
    resumed = MLflowTracker(
        str(tmp_path / "next"), store, str(tmp_path), "requeued", resume=str(tmp_path / "run")
    )
    assert resumed.run_id == first.run_id
    assert "resumed_from" not in MlflowClient(tracking_uri=store).get_run(first.run_id).data.tags
