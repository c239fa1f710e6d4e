"""`vidlearn-eval`: evaluate a checkpoint on a split: single view, views averaged, each view.

    vidlearn-eval ckpt=RUN/checkpoints/epoch007.ckpt                 # the run's own test rows
    vidlearn-eval ckpt=RUN/checkpoints/epoch007.ckpt split=val
    vidlearn-eval ckpt=RUN/checkpoints/epoch007.ckpt data.manifest=new.csv split=all

The rows and their splits are the run's (RUN/splits.csv, see vidlearn/inference/eval_rows.py);
views (the `views` group: clips x crops) read frames as training did (the checkpoint's clip
length, stride, target fps); images have crops only. Writes to
`out` (default RUN/eval/<checkpoint stem>/<split>): metrics.json, <level>_predictions.csv,
<level>_per_class.md, <level>_confusion.png, and <level>_roc_pr.png (binary) or
<level>_scatter.png (regression); prints the metrics and the per-class table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

import vidlearn.cli.demo  # noqa: F401  (registers the ${demo:...} resolver)
from vidlearn.cli.console import console_main
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.rows import read_rows
from vidlearn.errors import ConfigError
from vidlearn.inference.checkpoint import LoadedModel, load_checkpoint
from vidlearn.inference.eval_rows import eval_rows
from vidlearn.inference.evaluate import Evaluation, default_output_dir, evaluate, write_evaluation
from vidlearn.inference.predictor import frame_cache_for, resolve_device
from vidlearn.inference.views import build_views
from vidlearn.reports.tables import rich_table

logger = logging.getLogger(__name__)


def run_eval(cfg: DictConfig) -> Evaluation:
    """Run `cfg` (conf/eval.yaml); returns the evaluation that was written to `out`."""
    loaded = load_checkpoint(cfg.ckpt, device=resolve_device(cfg.device))
    rows = eval_rows(
        loaded.path,
        cfg.split,
        loaded.label_kind,
        loaded.classes,
        manifest_rows(cfg, loaded),
        str(cfg.data.get("manifest") or ""),
    )
    logger.info("scoring %s", rows.describe(cfg.split))
    views = build_views(cfg.views, loaded.preprocessing)
    cache = frame_cache_for(loaded, cfg.data.get("frame_cache"), cfg.data.get("frame_cache_max_gb"))
    evaluation = evaluate(
        loaded,
        rows.table["path"].tolist(),
        rows.table["target"].tolist(),
        views,
        cfg.batch_size,
        cfg.progress,
        cache,
    )
    out = Path(cfg.out) if cfg.out else default_output_dir(loaded.path, cfg.split)
    write_evaluation(
        evaluation,
        out,
        {
            "checkpoint": str(loaded.path),
            "split": cfg.split,
            "rows": rows.source,
            "num_rows": len(rows.table),
            "averaged_weights": loaded.averaged_weights,
            "views_config": OmegaConf.to_container(cfg.views, resolve=True),
        },
    )
    console = Console()
    console.print(
        rich_table(
            pd.DataFrame(evaluation.metrics()).rename_axis("metric").reset_index(),
            title=f"{cfg.split} metrics - {out}",
        )
    )
    for level, result in evaluation.levels.items():
        if result.per_class is not None:
            console.print(rich_table(result.per_class, title=f"{level} level, per class"))
    return evaluation


def manifest_rows(cfg: DictConfig, loaded: LoadedModel) -> pd.DataFrame | None:
    """The rows of the data group's manifest or folder (read as in training: root, filter,
    path template), or None when it names neither: then the run's splits.csv gives the rows."""
    if not cfg.data.get("manifest") and (
        OmegaConf.is_missing(cfg.data, "folder") or not cfg.data.get("folder")
    ):
        return None
    is_video = issubclass(get_class(cfg.data._target_), VideoDataModule)
    if is_video != (loaded.modality == "video"):
        raise ConfigError(
            f"ckpt={cfg.ckpt} is a {loaded.modality} model but data={cfg.data._target_} reads "
            f"{'videos' if is_video else 'images'}; pick the matching data group, e.g. "
            f"data={'video_csv' if loaded.modality == 'video' else 'image_csv'}."
        )
    # probe=False: evaluate() reads every file itself and lists those it cannot read as errors.
    datamodule = instantiate(
        cfg.data, label_kind=loaded.label_kind, classes=loaded.classes or None, probe=False
    )
    return read_rows(datamodule.row_options).table


@console_main("eval")
def main(cfg: DictConfig) -> None:
    run_eval(cfg)


if __name__ == "__main__":
    main()
