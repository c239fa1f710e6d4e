"""`vidlearn-predict`: score videos or images with a trained checkpoint.

    vidlearn-predict ckpt=RUN/checkpoints/last.ckpt input=clip.mp4
    vidlearn-predict ckpt=RUN/checkpoints/last.ckpt input=clips/ out=preds.csv top_k=2 device=cuda

Writes `out` (one row per file: the top-k classes and probabilities, or the regressed value)
and, for videos, `<out stem>_windows.csv` (one row per view, a window and a crop: window, crop,
start_frame, end_frame, start_s, end_s, scores; seconds are empty for arrays, which have no
frame rate). Binary `class_1` follows
the checkpoint's threshold, as in vidlearn-eval.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from vidlearn.cli.console import console_main
from vidlearn.inference.checkpoint import load_checkpoint
from vidlearn.inference.inputs import list_inputs
from vidlearn.inference.predictor import (
    frame_cache_for,
    predict_files,
    resolve_device,
    top_k_table,
)
from vidlearn.inference.views import build_views

logger = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> list[Path]:
    """Run `cfg` (conf/predict.yaml); returns the CSV files written."""
    loaded = load_checkpoint(cfg.ckpt, device=resolve_device(cfg.device))
    paths = list_inputs(cfg.input, loaded.modality, cfg.path_column)
    views = build_views(cfg.views, loaded.preprocessing)
    cache = frame_cache_for(loaded, cfg.frame_cache, cfg.frame_cache_max_gb)
    predictions = predict_files(loaded, paths, views, cfg.batch_size, cfg.progress, cache)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    top_k_table(predictions, loaded.label_kind, cfg.top_k, loaded.threshold).to_csv(
        out, index=False
    )
    written = [out]
    if loaded.modality == "video":
        windows = out.with_name(f"{out.stem}_windows.csv")
        predictions.windows.to_csv(windows, index=False)
        written.append(windows)
    failed = int((predictions.files["error"] != "").sum())
    logger.info(
        "%d files scored, %d unreadable; wrote %s",
        len(paths) - failed,
        failed,
        ", ".join(map(str, written)),
    )
    return written


@console_main("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
