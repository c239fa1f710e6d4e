"""`vidlearn-train`: compose the config, build data, model and task, fit, report.

    vidlearn-train                                   # frame CNN + GRU on the demo videos
    vidlearn-train experiment=lookdeep_posture       # MobileNetV2 on the demo images
    vidlearn-train data.manifest=clips.csv data.frames=16 trainer.max_epochs=30
    vidlearn-train -m optimizer.lr=1e-3,1e-4          # a sweep, one run per value

The run directory (printed at the start) receives the resolved config, the split lists, the
CSV logs, the checkpoints and summary.json.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import get_class, get_object, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import WeightAveraging
from rich.console import Console
from rich.table import Table

import vidlearn.cli.demo  # noqa: F401  (registers the ${demo:...} resolver)
from vidlearn.callbacks import (
    AtomicCheckpointIO,
    NonFiniteLossFiles,
    ResumeCheck,
    ResumeState,
    SigtermCheckpoint,
    Tracker,
    claim_run_dir,
    failed_on_error,
)
from vidlearn.cli.console import console_main
from vidlearn.cli.pretrained import fetch_pretrained, weights_preprocessing
from vidlearn.cli.run_files import write_provenance
from vidlearn.cli.schema import validate
from vidlearn.data.bad_files import BadFileMonitor
from vidlearn.data.datamodules import ManifestDataModule, write_splits
from vidlearn.data.datasets import collate
from vidlearn.data.device_augment import DeviceAugmentations
from vidlearn.data.samplers import balanced_class_weights, positive_weight
from vidlearn.errors import ConfigError
from vidlearn.inference.checkpoint import LoadedModel, averaged, load_checkpoint
from vidlearn.inference.evaluate import evaluate as evaluate_views
from vidlearn.inference.views import build_views
from vidlearn.reports.plots import plot_confusion_matrix, plot_training_curves
from vidlearn.tasks.callbacks import MonitorCheck
from vidlearn.tasks.preflight import preflight

logger = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job described by `cfg`; returns the summary written to summary.json."""
    validate(cfg)
    run_dir = Path(cfg.paths.output_dir)
    with claim_run_dir(
        run_dir, cfg.resume
    ):  # one run per folder; see vidlearn/callbacks/run_dir.py
        return _fit_and_report(cfg, run_dir)


def _fit_and_report(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """The body of train(), inside a claimed run directory: build, fit, evaluate, report."""
    pl.seed_everything(cfg.seed, workers=True)
    task_class = get_class(cfg.task._target_)
    set_monitor(cfg, task_class)
    fetch_pretrained(cfg.model)  # a missing weights file fails now, not after the data setup
    if cfg.test:  # a bad views key fails now, not in the final test after the whole run
        build_views(cfg.get("views"), {"frames": cfg.data.get("frames", 1), "stride": 1})
    datamodule = setup_data(cfg, task_class.label_kind, run_dir)
    model, task = build_task(cfg, datamodule, task_class.label_kind)
    bad_files = BadFileMonitor(cfg.data.max_bad_fraction, datamodule.probe_skipped)
    nonfinite = NonFiniteLossFiles()
    trainer = build_trainer(cfg, run_dir, [bad_files, nonfinite])
    with failed_on_error(trackers(trainer)):  # Lightning marks them finished after fit
        if trainer.is_global_zero:
            OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
            write_provenance(run_dir)
        fit(cfg, trainer, model, task, datamodule)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        metrics = evaluate(trainer, task, datamodule, best or None, cfg.test)
        views = test_views(cfg, trainer, task, datamodule, best) if trainer.is_global_zero else None
        summary = {
            "status": "ok",
            "monitor": cfg.monitor,
            "weight_averaging": weight_averaging(cfg),  # callbacks=ema as configured, or None
            "averaged_weights": averaged_weights(trainer, best),  # metrics of an average
            "metrics": metrics,
            **({"test_views": views} if views else {}),
            "best_checkpoint": best,
            "epochs": trainer.current_epoch,
            **data_summary(datamodule),
            "skipped": bad_files.records,
            "nonfinite_steps": nonfinite.skipped_steps,
        }
        if trainer.is_global_zero:
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
            write_plots(task, datamodule.classes, run_dir)
            for tracker in trackers(trainer):
                tracker.log_outcome(run_dir, summary)
            print_metrics(metrics, run_dir)
        return summary


# metrics whose name ends so are better when lower: losses and errors
MINIMISED = ("loss", "mae", "mse", "rmse", "error")


def monitor_mode(monitor: str) -> str:
    """'min' for a loss or error metric (`val/loss`, `val/log_loss`, `train/loss_step`), else 'max'.

    The metric is the name after the split; what follows it (`val/recall/<class>`) is a class name.
    """
    parts = monitor.split("/")
    metric = parts[1] if len(parts) > 1 else parts[0]
    return "min" if any(word.endswith(MINIMISED) for word in metric.split("_")) else "max"


def set_monitor(cfg: DictConfig, task_class: type) -> None:
    """Fill `monitor` with the task's own when null, and `monitor_mode` with the metric's.

    A `monitor_mode` against the metric's direction (max of a loss) would keep the worst
    checkpoint and stop early when the run improves, so it is a ConfigError.
    """
    # str(): a bare number on the command line (monitor=1) arrives as an int
    monitor = str(cfg.monitor) if cfg.monitor is not None else task_class.default_monitor[0]
    mode = monitor_mode(monitor)
    if cfg.monitor_mode is not None and cfg.monitor_mode != mode:
        raise ConfigError(
            f"monitor_mode={cfg.monitor_mode} contradicts monitor={monitor}, which is better "
            f"when {'lower' if mode == 'min' else 'higher'} (metrics ending in "
            f"{', '.join(MINIMISED)} are minimised, others maximised): set monitor_mode={mode} "
            "or leave it null."
        )
    with open_dict(cfg):
        cfg.monitor = monitor
        cfg.monitor_mode = mode


def setup_data(cfg: DictConfig, label_kind: str, run_dir: Path) -> ManifestDataModule:
    """The set-up DataModule; writes the run's splits.csv, the channel count and the
    normalisation it chose (data.mean/std null: see build_datamodule) into `cfg`."""
    logger.info("data: %s", cfg.data._target_)
    datamodule = build_datamodule(cfg, label_kind)
    datamodule.setup("fit")
    write_splits(datamodule, run_dir)
    with open_dict(cfg):
        cfg.data.channels = datamodule.channels  # read from the files; model presets follow it
        cfg.data.mean, cfg.data.std = datamodule.mean, datamodule.std  # device augment reads them
    return datamodule


def build_task(
    cfg: DictConfig, datamodule: ManifestDataModule, label_kind: str
) -> tuple[torch.nn.Module, pl.LightningModule]:
    """The model (sized by the data) and the task that trains it."""
    logger.info("model: %s", cfg.model._target_)
    model = instantiate(cfg.model, num_outputs=datamodule.num_outputs)
    if cfg.channels_last:
        to_channels_last(model)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    # _recursive_=False: model_config holds a _target_ that must be stored, not instantiated.
    task = instantiate(
        cfg.task,
        model=model,
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        classes=datamodule.classes,
        preprocessing=datamodule.preprocessing(),
        model_config=OmegaConf.to_container(cfg.model, resolve=True),
        batch_augment=batch_augment(cfg),
        normalise=datamodule.batch_normalisation(),  # data.normalise_on_device: uint8 batches
        mix=instantiate(cfg.mix) if cfg.get("mix") else None,  # mix=mixup, cutmix, ...
        _recursive_=False,
        **task_statistics(label_kind, cfg.task, datamodule),
    )
    return model, task


def batch_augment(cfg: DictConfig) -> DeviceAugmentations | None:
    """The augmentation the task runs on training batches on the device: augment=*_device's
    `device` node, then erasing=random; None when neither is chosen."""
    nodes = [cfg.augment.get("device"), cfg.get("erasing")]
    steps = [instantiate(node) for node in nodes if node]
    return DeviceAugmentations(steps) if steps else None


def to_channels_last(model: torch.nn.Module) -> None:
    """Channels-last layout in place: channels_last for 4-D (2D conv) weights, channels_last_3d
    for 5-D (3D conv) ones; `Module.to(memory_format=channels_last)` rejects 5-D weights."""
    layouts = {4: torch.channels_last, 5: torch.channels_last_3d}
    for parameter in model.parameters():
        if parameter.dim() in layouts:
            parameter.data = parameter.data.contiguous(memory_format=layouts[parameter.dim()])


def build_trainer(cfg: DictConfig, run_dir: Path, monitors: list[pl.Callback]) -> pl.Trainer:
    """The trainer with the config's callbacks and loggers, then `monitors` and the run's own."""
    callbacks: list[pl.Callback] = [MonitorCheck(cfg.monitor)]  # before checkpoint/early stop
    callbacks += [instantiate(node) for node in (cfg.get("callbacks") or {}).values()]
    callbacks += [
        *monitors,
        ResumeCheck(resume_checkpoint(cfg.resume)),
        ResumeState(),
        SigtermCheckpoint(run_dir / "checkpoints"),
    ]
    loggers = [instantiate(node) for node in (cfg.get("logger") or {}).values()]
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run_dir),
    )


def weight_averaging(cfg: DictConfig) -> dict[str, Any] | None:
    """The callbacks node that averages the weights (callbacks=ema), resolved; None without one.
    A node built by a function (Hydra builds those too) is not one: only classes are checked."""
    for node in (cfg.get("callbacks") or {}).values():
        target = get_object(node._target_) if node else None
        if isinstance(target, type) and issubclass(target, WeightAveraging):
            return OmegaConf.to_container(node, resolve=True)
    return None


def averaged_weights(trainer: pl.Trainer, checkpoint: str) -> bool:
    """Whether the final metrics scored averaged weights: those of `checkpoint` (averaged once
    callbacks=ema had made its first update before saving it) or, without a checkpoint, the
    last weights, which fit ends with the average only once averaging has started."""
    if checkpoint:
        return averaged(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True))
    return any(getattr(callback, "ended_with_average", False) for callback in trainer.callbacks)


def fit(
    cfg: DictConfig,
    trainer: pl.Trainer,
    model: torch.nn.Module,
    task: pl.LightningModule,
    datamodule: ManifestDataModule,
) -> None:
    """Preflight one batch, compile when asked, record the config in the trackers, then fit
    (resuming when `cfg.resume` says so)."""
    example = preflight(task, datamodule.datasets["train"], collate, trainer.strategy.root_device)
    task.example_input_array = example[:1]  # the model summary then shows real FLOPs and shapes
    if cfg.compile:
        model.compile()  # in place: parameter names, hence checkpoints, are unchanged
    # after the preflight, so that a refused run leaves no tracker run open (rank zero logs)
    for tracker in trackers(trainer):
        tracker.log_config(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(task, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg.resume))


def trackers(trainer: pl.Trainer) -> list[Tracker]:
    """The trainer's loggers that also record config, summary and plots (logger=mlflow, wandb)."""
    return [each for each in trainer.loggers if isinstance(each, Tracker)]


def evaluate(
    trainer: pl.Trainer,
    task: pl.LightningModule,
    datamodule: ManifestDataModule,
    checkpoint: str | None,
    test: bool,
) -> dict[str, float]:
    """Validation metrics of `checkpoint` (None: the last weights), and test ones with `test`."""
    run = {"datamodule": datamodule, "ckpt_path": checkpoint, "verbose": False}
    metrics = _scalars(trainer.validate(task, **run)[0])
    if test and "test" in datamodule.datasets:
        metrics.update(_scalars(trainer.test(task, **run)[0]))
    return metrics


def test_views(
    cfg: DictConfig,
    trainer: pl.Trainer,
    task: pl.LightningModule,
    datamodule: ManifestDataModule,
    best: str,
) -> dict[str, Any] | None:
    """The test split under `cfg.views` (conf/views/), as vidlearn-eval scores it: the view
    counts, the single view's metrics (centre clip, centre crop) and the views averaged; None
    without a test split or with `test: false`. The best checkpoint is reloaded as the tools
    load it (the last weights when checkpointing is off)."""
    if not cfg.test or not len(datamodule.datasets.get("test", [])):
        return None
    device = trainer.strategy.root_device
    if best:
        loaded = load_checkpoint(best, device=device)
    else:
        hparams = dict(task.hparams)
        loaded = LoadedModel(
            Path(cfg.paths.output_dir),
            task.model.to(device).eval(),
            task.label_kind,
            list(hparams.get("classes") or []),
            dict(hparams["preprocessing"]),
            hparams,
        )
    rows = datamodule.split_rows("test")
    evaluation = evaluate_views(
        loaded,
        rows["path"].tolist(),
        rows["target"].tolist(),
        build_views(cfg.get("views"), loaded.preprocessing),  # none: sliding windows
        cfg.data.batch_size,
        progress=False,
        frame_cache=getattr(datamodule, "frame_cache", None),
    )
    return evaluation.side_by_side()


def data_summary(datamodule: ManifestDataModule) -> dict[str, Any]:
    """The summary.json entries about the data: classes, split sizes, backends, dropped rows."""
    rows = datamodule.rows
    return {
        "classes": datamodule.classes,
        "num_train": len(datamodule.datasets["train"]),
        "num_val": len(datamodule.datasets.get("val", [])),
        "num_test": len(datamodule.datasets.get("test", [])),
        "backends": rows.probe.backends if rows.probe else {},
        "dropped_rows": len(rows.dropped),
    }


def build_datamodule(cfg: DictConfig, label_kind: str) -> ManifestDataModule:
    """The training DataModule of `cfg`, with its weighted sampler and augmentation (not set up).

    A null data.mean/data.std takes the statistics the model's pretrained weights expect.
    """
    pretrained = weights_preprocessing(cfg.model)
    return instantiate(
        cfg.data,
        label_kind=label_kind,
        weights_statistics=(pretrained.mean, pretrained.std) if pretrained else None,
        sampler=instantiate(cfg.sampler),
        augment=instantiate(cfg.augment, device=None).transforms,  # device: built by build_task
    )


def task_statistics(label_kind: str, task_cfg: DictConfig, datamodule: Any) -> dict[str, Any]:
    """Task arguments computed from the training targets.

    Regression with `standardize_targets` gets `target_stats` (mean, std); `class_weights:
    balanced` (multiclass) and `pos_weight: balanced` (binary) become inverse-frequency loss
    weights, the loss-side alternative to a balancing sampler.
    """
    targets = datamodule.split_rows("train")["target"].to_numpy()
    if label_kind == "regression" and task_cfg.get("standardize_targets"):
        values = targets.astype(float)
        return {"target_stats": (float(values.mean()), float(values.std()))}  # 0: the task refuses
    if label_kind == "multiclass" and task_cfg.get("class_weights") == "balanced":
        weights = balanced_class_weights(targets.astype(np.int64), len(datamodule.classes))
        return {"class_weights": weights.tolist()}
    if label_kind == "binary" and task_cfg.get("pos_weight") == "balanced":
        return {"pos_weight": float(positive_weight(targets.astype(np.float32)))}
    return {}


def resume_checkpoint(resume: str | None) -> str | None:
    """Map `resume=` (a run directory or a checkpoint file) to the checkpoint to continue from."""
    if not resume:
        return None
    path = Path(resume).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ConfigError(
            f"resume={resume}: no checkpoint at {path}; pass a run directory "
            "that has checkpoints/last.ckpt, or a .ckpt file."
        )
    return str(path)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in sorted(metrics.items())}


def write_plots(task: pl.LightningModule, classes: list[str], run_dir: Path) -> None:
    """Training curves per epoch and the best checkpoint's validation confusion matrix."""
    if (run_dir / "metrics.csv").is_file():
        plot_training_curves(run_dir / "metrics.csv", run_dir / "plots" / "training_curves.png")
    # The last validate() ran on the best checkpoint, so this is that checkpoint's matrix.
    if "val" in getattr(task, "confusion", {}):
        plot_confusion_matrix(
            task.confusion["val"].numpy(), classes, run_dir / "plots" / "val_confusion.png"
        )


def print_metrics(metrics: dict[str, float], run_dir: Path) -> None:
    """Print the final metrics as a table, then where the run's files are."""
    table = Table(title="final metrics (best checkpoint)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}" if math.isfinite(value) else str(value))
    console = Console()
    console.print(table)
    console.print(f"run directory: {run_dir}")


@console_main("train")
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns the monitored metric so sweepers can optimise it."""
    summary = train(cfg)
    return summary["metrics"].get(cfg.monitor)


if __name__ == "__main__":
    main()
