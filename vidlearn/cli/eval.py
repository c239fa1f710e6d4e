"""`vidlearn-eval`: evaluate a checkpoint on a split, video level (views averaged) and clip level.

    vidlearn-eval ckpt=RUN/checkpoints/last.ckpt                          # demo data, test split
    vidlearn-eval ckpt=RUN/checkpoints/last.ckpt data.manifest=clips.csv split=val out=eval_val

Writes to `out` (default RUN/eval/<split>): metrics.json, <level>_predictions.csv,
<level>_per_class.md, <level>_confusion.png, and <level>_roc_pr.png (binary) or
<level>_scatter.png (regression); prints the metrics and the per-class table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from rich.console import Console

import vidlearn.cli.demo  # noqa: F401  (registers the ${demo:...} resolver)
from vidlearn.cli.console import console_main
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.errors import ConfigError
from vidlearn.inference.checkpoint import load_checkpoint
from vidlearn.inference.evaluate import Evaluation, default_output_dir, evaluate, write_evaluation
from vidlearn.inference.predictor import frame_cache_for, resolve_device
from vidlearn.reports.tables import rich_table


def run_eval(cfg: DictConfig) -> Evaluation:
    """Run `cfg` (conf/eval.yaml); returns the evaluation that was written to `out`."""
    loaded = load_checkpoint(cfg.ckpt, device=resolve_device(cfg.device))
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
    datamodule.setup("test")
    rows = datamodule.split_rows(cfg.split)
    if rows.empty:
        raise ConfigError(
            f"split={cfg.split}: no rows in {cfg.data.manifest}; choose train, val or test."
        )
    views = instantiate(cfg.views, clip_length=int(loaded.preprocessing.get("frames", 1)))
    cache = frame_cache_for(loaded, cfg.data.get("frame_cache"), cfg.data.get("frame_cache_max_gb"))
    evaluation = evaluate(
        loaded,
        rows["path"].tolist(),
        rows["target"].tolist(),
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
            "manifest": str(cfg.data.get("manifest") or cfg.data.get("folder")),
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


@console_main("eval")
def main(cfg: DictConfig) -> None:
    run_eval(cfg)


if __name__ == "__main__":
    main()
