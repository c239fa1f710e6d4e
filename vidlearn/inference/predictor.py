"""Run a loaded model on files: every view (window) of each video, batched, then averaged.

`predict_files` reads each file in turn, transforms each of its clips exactly as evaluation
did during training (resize, normalise; no augmentation), runs the clips in batches of
`batch_size` and returns per-window scores and per-file scores (the mean over the file's
windows). Images have one "window" each. Unreadable files are reported, not skipped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress
from torch import Tensor

from vidlearn.data.datasets import read_image
from vidlearn.data.frame_cache import FrameCache
from vidlearn.data.transforms import ClipTransform, ImageTransform
from vidlearn.data.video import DecodeError, open_video
from vidlearn.errors import ConfigError
from vidlearn.inference.checkpoint import LoadedModel
from vidlearn.inference.views import build_views
from vidlearn.reports.metrics import predict_classes

logger = logging.getLogger(__name__)

ViewSampler = Callable[[int, float, np.random.Generator], list[np.ndarray]]
WINDOW_TIMES = ("start_frame", "end_frame", "start_s", "end_s")


@dataclass
class Predictions:
    """Scores per file and per window; score columns are `LoadedModel.score_names`.

    `files`: path, windows (count), error ("" when read), then one column per score name.
    `windows`: file (row of `files`), path, window (0-based), start_frame, end_frame (the first
    frame read and one past the last), start_s, end_s (the same in seconds; NaN for arrays, which
    have no frame rate), then the scores.
    Files that could not be read keep a row in `files` with NaN scores and the reason in `error`.
    """

    files: pd.DataFrame
    windows: pd.DataFrame
    score_names: list[str]


def resolve_device(device: str) -> torch.device:
    """`auto` -> the GPU when there is one, else the CPU; anything else as torch spells it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if resolved is None or not available.get(resolved.type, False):
        raise ConfigError(
            f"device={device!r} is not a device this machine has; use device=auto, cpu or, "
            "with a GPU, cuda or cuda:N."
        )
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device={device}: this machine has {torch.cuda.device_count()} CUDA device(s)."
        )
    return resolved


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def predict_files(
    loaded: LoadedModel,
    paths: Sequence[str | Path],
    views: ViewSampler | None = None,
    batch_size: int = 16,
    progress: bool = True,
    frame_cache: FrameCache | None = None,
) -> Predictions:
    """Score every view of every file in `paths`; `views` defaults to all sliding windows with
    the checkpoint's clip length and frame spacing (`vidlearn.inference.views.build_views`).

    With a `frame_cache` (see `frame_cache_for`), videos are read from and added to it.
    """
    device = next(loaded.model.parameters()).device
    if views is None and loaded.modality == "video":
        views = build_views(None, loaded.preprocessing)
    window_rows: list[dict] = []
    window_scores: list[np.ndarray] = []
    errors = [""] * len(paths)
    pending: list[tuple[dict, Tensor]] = []

    def flush() -> None:
        inputs = torch.stack([tensor for _, tensor in pending]).to(device)
        with torch.inference_mode():
            scores = loaded.scores(loaded.model(inputs)).float().cpu().numpy()  # (B, S)
        window_rows.extend(row for row, _ in pending)
        window_scores.append(scores)
        pending.clear()

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("predicting", total=len(paths))
        for index, path in enumerate(paths):
            try:
                for window, (timing, tensor) in enumerate(
                    _views_of(loaded, str(path), views, frame_cache)
                ):
                    pending.append(
                        ({"file": index, "path": str(path), "window": window, **timing}, tensor)
                    )
                    if len(pending) == batch_size:
                        flush()
            except DecodeError as error:
                logger.warning("cannot read %s", error)
                errors[index] = str(error)
            bar.advance(task)
        if pending:
            flush()
    return _tables(paths, errors, window_rows, window_scores, loaded.score_names)


def frame_cache_for(
    loaded: LoadedModel, folder: str | Path | None, max_gb: float | None = None
) -> FrameCache | None:
    """The frame cache at `folder` (None: no cache) for the checkpoint's size and backend."""
    if not folder or loaded.modality != "video":
        return None
    pre = loaded.preprocessing
    return FrameCache(folder, pre["size"], pre.get("backend", "decord"), max_gb=max_gb)


def _views_of(
    loaded: LoadedModel, path: str, views: ViewSampler | None, frame_cache: FrameCache | None = None
) -> Iterator[tuple[dict[str, float], Tensor]]:
    """(timing, input tensor) of each view of one file (timing: the WINDOW_TIMES columns);
    images: one view at frame 0. A file with the wrong channel count raises DecodeError."""
    pre = loaded.preprocessing
    if loaded.modality == "image":
        transform = ImageTransform(
            [], pre["size"], pre["mean"], pre["std"], pad_to_square=bool(pre.get("pad_to_square"))
        )
        yield dict.fromkeys(WINDOW_TIMES, 0.0), transform(read_image(path))  # (C, H, W)
        return
    transform = ClipTransform(
        [],
        pre["size"],
        pre["mean"],
        pre["std"],
        per_frame_max_norm=pre.get("per_frame_max_norm", False),
    )
    if frame_cache is not None:
        reader = frame_cache.open(path)
    else:
        reader = open_video(path, backend=pre.get("backend", "decord"))
    try:
        fps = reader.fps if reader.fps > 0 else float("nan")  # arrays: frames only
        # Decode every clip before yielding, so a failure mid-video drops the whole file.
        # A fixed generator: a random view sampler still gives every run the same views.
        views_of_file = views(reader.num_frames, reader.fps, np.random.default_rng(0))
        clips = [(clip, reader.read(clip)) for clip in views_of_file]
    finally:
        reader.close()
    for clip, frames in clips:
        _check_channels(path, frames, pre.get("channels"))
        first, end = int(clip.min()), int(clip.max()) + 1
        timing = {
            "start_frame": first,
            "end_frame": end,
            "start_s": first / fps,
            "end_s": end / fps,
        }
        yield timing, transform(frames)  # (T, C, H, W)


def _check_channels(path: str, frames: np.ndarray, channels: int | None) -> None:
    """Frames (T, H, W, C) with another channel count than the model was trained on cannot be
    batched with the others: the file is reported unreadable instead."""
    if channels is not None and frames.shape[-1] != int(channels):
        raise DecodeError(
            f"{path}: {frames.shape[-1]} channel(s), but the model was trained on {channels}; "
            "convert the file (e.g. grey to RGB) or predict it with a model of its channels"
        )


def _tables(
    paths: Sequence[str | Path],
    errors: list[str],
    rows: list[dict],
    scores: list[np.ndarray],
    names: list[str],
) -> Predictions:
    score_array = np.concatenate(scores) if scores else np.zeros((0, len(names)), dtype=np.float32)
    windows = pd.concat(
        [
            pd.DataFrame(rows, columns=["file", "path", "window", *WINDOW_TIMES]),
            pd.DataFrame(score_array, columns=names),
        ],
        axis=1,
    )
    files = pd.DataFrame({"path": [str(p) for p in paths], "error": errors})
    grouped = windows.groupby("file")
    files["windows"] = grouped.size().reindex(files.index, fill_value=0)
    files = pd.concat([files, grouped[names].mean().reindex(files.index)], axis=1)
    return Predictions(files=files, windows=windows, score_names=names)


def top_k_table(
    predictions: Predictions, label_kind: str, k: int, threshold: float = 0.5
) -> pd.DataFrame:
    """One row per file: path, windows, error, then `class_i`/`probability_i` for the k best classes
    (regression: `prediction`). `class_1` is the predicted class as eval decides it
    (`vidlearn.reports.metrics.predict_classes`): binary, positive when its probability reaches
    the checkpoint's `threshold`."""
    files = predictions.files
    table = files[["path", "windows", "error"]].copy()
    if label_kind == "regression":
        table["prediction"] = files["prediction"]
        return table
    names = np.array(predictions.score_names)
    scores = files[predictions.score_names].to_numpy(dtype=float)  # (N, K), NaN rows for errors
    readable = ~np.isnan(scores).any(axis=1)
    ranked = np.nan_to_num(scores, nan=-1.0)
    predicted = predict_classes(ranked, threshold)  # (N,)
    ranked[np.arange(len(scores)), predicted] = np.inf  # the predicted class first, then by score
    order = np.argsort(-ranked, axis=1, kind="stable")[:, : min(k, len(names))]
    for rank in range(order.shape[1]):
        picked = order[:, rank]
        table[f"class_{rank + 1}"] = np.where(readable, names[picked], "")
        table[f"probability_{rank + 1}"] = np.where(
            readable, scores[np.arange(len(scores)), picked], np.nan
        )
    return table
