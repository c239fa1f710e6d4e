"""Two CPU processes (DDP, gloo) train as one run: one run directory, one summary, exact metrics."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

VIDLEARN_TRAIN = Path(sys.executable).parent / "vidlearn-train"


def evaluate_single_process(run: Path, checkpoint: str) -> dict[str, float]:
    """Validation metrics of `checkpoint` in this process, with the run's resolved config."""
    cfg = OmegaConf.load(run / "config.yaml")
    task_class = get_class(cfg.task._target_)
    datamodule = instantiate(
        cfg.data, label_kind=task_class.label_kind, sampler=instantiate(cfg.sampler), augment=[]
    )
    datamodule.setup("fit")
    model = instantiate(cfg.model, num_outputs=datamodule.num_outputs)
    task = task_class.load_from_checkpoint(
        checkpoint, model=model, optimizer=None, scheduler=None, map_location="cpu"
    )
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    return {
        k: float(v)
        for k, v in trainer.validate(task, datamodule=datamodule, verbose=False)[0].items()
    }


def test_two_process_ddp_writes_one_summary_with_exact_val_metrics(
    tmp_path: Path, demo_videos: Path
) -> None:
    run = tmp_path / "outputs" / "run"
    result = subprocess.run(
        [
            str(VIDLEARN_TRAIN),
            "trainer=ddp_cpu",
            f"data.manifest={demo_videos}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "data.size=32",
            "data.frames=6",
            "data.batch_size=4",
            "trainer.max_epochs=1",
            "data.num_workers=0",
            "~callbacks.progress_bar",
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == [
        "run"
    ]  # the second rank reused it
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "ok"
    single = evaluate_single_process(run, summary["best_checkpoint"])
    for name in ("val/loss", "val/accuracy", "val/balanced_accuracy"):
        assert summary["metrics"][name] == pytest.approx(single[name], abs=1e-6), name
