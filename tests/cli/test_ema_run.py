"""vidlearn-train callbacks=ema end to end: the run's checkpoints hold the average as their
weights, the summary says so, and vidlearn-eval, -predict and -export use the average.

Each tool is run on the run's best checkpoint, on a copy that holds only the average (no trace
of averaging) and on a copy that holds only the trained weights: its output must equal the
first copy's and differ from the second's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_small_train
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.eval import run_eval
from vidlearn.cli.export import export
from vidlearn.cli.predict import predict
from vidlearn.cli.train import train, weight_averaging
from vidlearn.inference.checkpoint import load_checkpoint

EMA_KEYS = ("current_model_state", "averaging_state")


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory: pytest.TempPathFactory, demo_videos: Path) -> dict[str, Any]:
    """One epoch of 5 steps (batches of 4) at a high learning rate, with decay 0.5: the average
    is far from the trained weights."""
    folder = tmp_path_factory.mktemp("ema_run")
    cfg = compose_small_train(
        folder,
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=6",
        "data.batch_size=4",
        "callbacks=ema",
        "callbacks.ema.decay=0.5",
        "optimizer.lr=0.01",
    )
    return train(cfg)


@pytest.fixture(scope="module")
def variants(ema_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The best checkpoint, a copy with the average alone and a copy with the trained weights."""
    best = Path(ema_run["best_checkpoint"])
    contents = torch.load(best, map_location="cpu", weights_only=True)
    folder = tmp_path_factory.mktemp("variants")
    plain = {k: v for k, v in contents.items() if k not in EMA_KEYS}
    torch.save(plain, folder / "average.ckpt")
    torch.save({**plain, "state_dict": contents["current_model_state"]}, folder / "trained.ckpt")
    return {"ema": best, "average": folder / "average.ckpt", "trained": folder / "trained.ckpt"}


def test_the_summary_records_the_averaging(ema_run: dict[str, Any]) -> None:
    averaging = ema_run["weight_averaging"]
    assert averaging["_target_"] == "vidlearn.callbacks.ema.ExponentialMovingAverage"
    assert averaging["decay"] == 0.5
    assert ema_run["averaged_weights"] is True  # its metrics are the average's


def test_a_run_ending_before_the_average_starts_says_its_weights_are_not_averaged(
    compose_train: Callable[..., Any], demo_videos: Path
) -> None:
    """One step of training, the average starting at step 1000: the checkpoint and the metrics
    hold the trained weights, which the summary said were averaged."""
    summary = train(
        compose_train(
            f"data.manifest={demo_videos}",
            "data.frames=2",
            "data.size=16",
            "data.batch_size=2",
            "+trainer.limit_train_batches=1",
            "+trainer.limit_val_batches=1",
            "test=false",
            "callbacks=ema",
            "callbacks.ema.update_starting_at_step=1000",
        )
    )
    assert summary["weight_averaging"]["update_starting_at_step"] == 1000
    assert summary["averaged_weights"] is False


def test_a_run_without_ema_records_none(
    compose_train: Callable[..., Any], demo_videos: Path
) -> None:
    assert weight_averaging(compose_train(f"data.manifest={demo_videos}")) is None


def scored(run: Path, checkpoint: Path, stage: str) -> dict[str, float]:
    """The metrics of `checkpoint` on the run's val ("validate") or test ("test") split, with
    the run's resolved config, in this process."""
    cfg = OmegaConf.load(run / "config.yaml")
    task_class = get_class(cfg.task._target_)
    datamodule = instantiate(
        cfg.data, label_kind=task_class.label_kind, sampler=instantiate(cfg.sampler), augment=[]
    )
    datamodule.setup("fit" if stage == "validate" else "test")
    task = task_class.load_from_checkpoint(
        checkpoint,
        model=instantiate(cfg.model, num_outputs=datamodule.num_outputs),
        optimizer=None,
        scheduler=None,
        map_location="cpu",
    )
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    metrics = getattr(trainer, stage)(task, datamodule=datamodule, verbose=False)[0]
    return {name: float(value) for name, value in metrics.items()}


def test_the_final_test_scores_the_average(
    ema_run: dict[str, Any], variants: dict[str, Path]
) -> None:
    """vidlearn-train's test metrics are the best checkpoint's average's. Lightning's own
    EMAWeightAveraging (as callbacks.ema._target_) failed it: the test ran on the trained weights."""
    run = Path(ema_run["best_checkpoint"]).parent.parent
    average = scored(run, variants["average"], "test")["test/loss"]
    trained = scored(run, variants["trained"], "test")["test/loss"]
    assert ema_run["metrics"]["test/loss"] == pytest.approx(average, abs=1e-6)
    assert average != pytest.approx(trained, abs=1e-3)


def test_the_checkpoint_loads_the_average_not_the_trained_weights(
    variants: dict[str, Path],
) -> None:
    contents = torch.load(variants["ema"], map_location="cpu", weights_only=True)
    loaded = load_checkpoint(variants["ema"])
    assert loaded.averaged_weights and not load_checkpoint(variants["average"]).averaged_weights
    weights = loaded.model.state_dict()
    for name, value in weights.items():
        assert torch.equal(value, contents["state_dict"][f"model.{name}"])
    trained = contents["current_model_state"]
    assert any(not torch.equal(value, trained[f"model.{name}"]) for name, value in weights.items())


def _compose(name: str, *overrides: str) -> Any:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


# Each tool: (its scores or outputs, the averaged_weights it records; None where it records none).
Outputs = tuple[np.ndarray, bool | None]


def eval_scores(ckpt: Path, demo_videos: Path, out: Path) -> Outputs:
    evaluation = run_eval(
        _compose(
            "eval",
            f"ckpt={ckpt}",
            f"data.manifest={demo_videos}",
            "data.num_workers=0",
            "progress=false",
            f"out={out}",
        )
    )
    recorded = json.loads((out / "metrics.json").read_text())["averaged_weights"]
    return evaluation.levels["video"].items[evaluation.classes].to_numpy(), recorded


def predict_scores(ckpt: Path, demo_videos: Path, out: Path) -> Outputs:
    test_files = pd.read_csv(demo_videos).query("split == 'test'")
    manifest = out / "files.csv"
    out.mkdir()
    test_files.assign(path=[str(demo_videos.parent / p) for p in test_files["path"]]).to_csv(
        manifest, index=False
    )
    files, _ = predict(
        _compose(
            "predict",
            f"ckpt={ckpt}",
            f"input={manifest}",
            f"out={out / 'p.csv'}",
            "progress=false",
            "device=cpu",
        )
    )
    table = pd.read_csv(files)
    return table[[c for c in table.columns if c.startswith("prob")]].to_numpy(), None


def export_outputs(ckpt: Path, demo_videos: Path, out: Path) -> Outputs:
    exported = export(_compose("export", f"ckpt={ckpt}", f"out={out}.pt"))
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(load_checkpoint(ckpt).input_shape(2), generator=generator)
    card = json.loads(exported.with_suffix(".json").read_text())
    return torch.jit.load(str(exported))(inputs).detach().numpy(), card["averaged_weights"]


@pytest.mark.parametrize("tool", [eval_scores, predict_scores, export_outputs])
def test_the_tools_use_the_average(
    tool: Callable[[Path, Path, Path], Outputs],
    variants: dict[str, Path],
    demo_videos: Path,
    tmp_path: Path,
) -> None:
    runs = {name: tool(ckpt, demo_videos, tmp_path / name) for name, ckpt in variants.items()}
    outputs = {name: values for name, (values, _) in runs.items()}
    assert outputs["ema"].size > 0
    np.testing.assert_allclose(outputs["ema"], outputs["average"], atol=1e-6)
    assert not np.allclose(outputs["ema"], outputs["trained"], atol=1e-4)
    recorded = {name: flag for name, (_, flag) in runs.items()}
    assert recorded in ({"ema": True, "average": False, "trained": False}, dict.fromkeys(runs))


EMA_TINY = (
    "data.size=32",
    "data.frames=6",
    "data.batch_size=4",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "augment=none",
    "callbacks=ema",
    "callbacks.ema.decay=0.5",
)


def last_checkpoint(summary: dict[str, Any]) -> dict[str, Any]:
    path = Path(summary["best_checkpoint"]).parent / "last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_resume_continues_the_trained_weights_and_the_average(
    compose_train: Callable[..., Any], demo_videos: Path, tmp_path: Path
) -> None:
    manifest = f"data.manifest={demo_videos}"
    straight = train(compose_train(manifest, *EMA_TINY, f"paths.output_dir={tmp_path / 'a'}"))
    stop_after_first_epoch = (  # any finite loss is below the threshold
        "+callbacks.stop._target_=pytorch_lightning.callbacks.EarlyStopping",
        "+callbacks.stop.monitor=val/loss",
        "+callbacks.stop.stopping_threshold=1e9",
    )
    first = tmp_path / "first"
    summary = train(
        compose_train(manifest, *EMA_TINY, *stop_after_first_epoch, f"paths.output_dir={first}")
    )
    assert summary["epochs"] == 1
    resumed = train(
        compose_train(manifest, *EMA_TINY, f"resume={first}", f"paths.output_dir={tmp_path / 'b'}")
    )
    expected, actual = last_checkpoint(straight), last_checkpoint(resumed)
    for key in ("state_dict", "current_model_state", "averaging_state"):
        assert expected[key].keys() == actual[key].keys()
        for name, value in expected[key].items():
            assert torch.equal(value, actual[key][name]), f"{key} {name} differs after resume"


@pytest.mark.slow
def test_two_process_ddp_checkpoints_and_scores_the_average(
    tmp_path: Path, demo_videos: Path
) -> None:
    """Each rank averages its own weights; the final val metrics are those of rank 0's average,
    the checkpoint's state_dict, scored here again in one process."""
    run = tmp_path / "run"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "vidlearn-train"),
            "trainer=ddp_cpu",
            f"data.manifest={demo_videos}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            *EMA_TINY,
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
    summary = json.loads((run / "summary.json").read_text())
    best = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)
    assert int(best["averaging_state"]["n_averaged"]) > 1
    single = scored(run, Path(summary["best_checkpoint"]), "validate")
    for name in ("val/loss", "val/accuracy"):
        assert summary["metrics"][name] == pytest.approx(single[name], abs=1e-6), name


def test_a_callback_made_by_a_function_is_not_taken_for_weight_averaging() -> None:
    """Hydra builds a callbacks node from a function as well as a class; the summary, written
    after the whole run, failed on it (get_class: 'Located non-class of type function')."""
    cfg = OmegaConf.create({"callbacks": {"made": {"_target_": "os.path.join"}}})  # a function
    assert weight_averaging(cfg) is None
