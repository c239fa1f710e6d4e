"""The runs of one multirun share a group in the trackers: an MLflow tag and a W&B group, both
the sweep directory's name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from wandb_records import read_run

VIDLEARN_TRAIN = Path(sys.executable).parent / "vidlearn-train"


@pytest.mark.slow
def test_the_runs_of_a_multirun_share_the_sweep_group(tmp_path: Path, demo_videos: Path) -> None:
    sweep = tmp_path / "multirun" / "lr_search"
    wandb_home = str(tmp_path / "wandb_home")
    result = subprocess.run(
        [
            str(VIDLEARN_TRAIN),
            "-m",
            "logger=[mlflow,wandb]",
            "optimizer.lr=1e-3,1e-4",
            f"data.manifest={demo_videos}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.log_dir={tmp_path}",
            f"hydra.sweep.dir={sweep}",
            "data.size=32",
            "data.frames=6",
            "trainer.max_epochs=1",
            "data.num_workers=0",
            "~callbacks.progress_bar",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={
            "OMP_NUM_THREADS": "1",
            "PATH": "/usr/bin:/bin",
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "WANDB_CONFIG_DIR": wandb_home,
            "WANDB_CACHE_DIR": wandb_home,
            "WANDB_DATA_DIR": wandb_home,
            **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("vidlearn").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["lr_search/0", "lr_search/1"]
    assert [run.data.tags["sweep"] for run in runs] == ["lr_search", "lr_search"]
    assert sorted(run.data.params["optimizer.lr"] for run in runs) == ["0.0001", "0.001"]

    offline = [read_run(folder) for folder in sorted(sweep.glob("*/wandb/offline-run-*"))]
    assert [(run.name, run.group) for run in offline] == [
        ("lr_search/0", "lr_search"),
        ("lr_search/1", "lr_search"),
    ]
