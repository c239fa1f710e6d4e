"""Run a loaded model on files: every view (clip x crop) of each video, batched, then averaged.

`predict_files` reads each file in turn, transforms each view exactly as evaluation did during
training (resize, normalise; no augmentation), runs the views in batches of `batch_size` and
returns per-view scores and per-file scores: the mean of the views' scores (class probabilities
after softmax or sigmoid, or regressed values; never logits). Images have one clip each and
`views.crops` crops. Unreadable files are reported, not skipped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress
from torch import Tensor

from vidlearn.data.datasets import read_image
from vidlearn.data.frame_cache import FrameCache
from vidlearn.data.transforms import ClipTransform, ImageTransform, PadToSquare, peaks_of
from vidlearn.data.video import DecodeError, open_video
from vidlearn.errors import ConfigError
from vidlearn.inference.checkpoint import LoadedModel
from vidlearn.inference.views import Views, build_views
from vidlearn.reports.metrics import predict_classes

logger = logging.getLogger(__name__)

WINDOW_TIMES = ("start_frame", "end_frame", "start_s", "end_s")
VIEW_COLUMNS = ("file", "path", "window", "crop", *WINDOW_TIMES, "averaged", "single_view")


@dataclass
class Predictions:
    """Scores per file and per window; score columns are `LoadedModel.score_names`.

    `files`: path, error ("" when read), windows (clips averaged), views (clips x crops
    averaged), then one column per score name: the mean over the file's averaged views.
    `windows`: one row per view: file (row of `files`), path, window (the clip, 0-based), crop
    (`full`, or left/centre/right, top/centre/bottom), start_frame, end_frame (the first frame
    read and one past the last), start_s, end_s (the same in seconds; NaN for arrays, which have
    no frame rate), averaged (part of the file's mean), single_view (the centre clip's centre
    crop, asked for by `predict_files(single_view=True)`; it may be a clip outside the views,
    then not averaged), then the scores.
    Files that could not be read keep a row in `files` with NaN scores and the reason in `error`.
    """

    files: pd.DataFrame
    windows: pd.DataFrame
    score_names: list[str]

    def single_view_files(self) -> pd.DataFrame:
        """`files` with the single view's scores instead of the mean (NaN where none)."""
        single = self.windows[self.windows["single_view"]].set_index("file")[self.score_names]
        files = self.files.drop(columns=self.score_names)
        return pd.concat([files, single.reindex(files.index)], axis=1)


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
    views: Views | None = None,
    batch_size: int = 16,
    progress: bool = True,
    frame_cache: FrameCache | None = None,
    single_view: bool = False,
) -> Predictions:
    """Score every view of every file in `paths`; `views` defaults to all sliding windows with
    the checkpoint's clip length and frame spacing, one crop (`build_views(None, ...)`).

    With `single_view`, each file's single view (`Views.centre`'s clip, centre crop) is marked
    in `windows`, scored once more only when it is not one of the views. With a `frame_cache`
    (see `frame_cache_for`), videos are read from and added to it; not with three crops, whose
    frames must keep their aspect ratio (the cache holds them squashed to the model's size), nor
    with per-frame max normalisation, whose peaks are read from the decoded frames (a resize
    lowers them).
    """
    device = next(loaded.model.parameters()).device
    views = views or build_views(None, loaded.preprocessing)
    if frame_cache is not None and views.crops > 1:
        logger.info("views.crops=%d: videos are decoded without the frame cache", views.crops)
        frame_cache = None
    if frame_cache is not None and loaded.preprocessing.get("per_frame_max_norm"):
        logger.info("per_frame_max_norm: videos are decoded without the frame cache")
        frame_cache = None
    view_rows: list[dict] = []
    view_scores: list[np.ndarray] = []
    errors = [""] * len(paths)
    pending: list[tuple[dict, Tensor]] = []

    def flush() -> None:
        inputs = torch.stack([tensor for _, tensor in pending]).to(device)
        with torch.inference_mode():
            scores = loaded.scores(loaded.model(inputs)).float().cpu().numpy()  # (B, S)
        view_rows.extend(row for row, _ in pending)
        view_scores.append(scores)
        pending.clear()

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("predicting", total=len(paths))
        for index, path in enumerate(paths):
            try:
                for row, tensor in _views_of(loaded, str(path), views, frame_cache, single_view):
                    pending.append(({"file": index, "path": str(path), **row}, tensor))
                    if len(pending) == batch_size:
                        flush()
            except DecodeError as error:
                # readers name the file; a sampler's ShortVideoError does not know it
                named = str(error) if str(path) in str(error) else f"{path}: {error}"
                logger.warning("cannot read %s", named)
                errors[index] = named
            bar.advance(task)
        if pending:
            flush()
    return _tables(paths, errors, view_rows, view_scores, loaded.score_names)


def frame_cache_for(
    loaded: LoadedModel, folder: str | Path | None, max_gb: float | None = None
) -> FrameCache | None:
    """The frame cache at `folder` (None: no cache) for the checkpoint's size and backend."""
    if not folder or loaded.modality != "video":
        return None
    pre = loaded.preprocessing
    return FrameCache(folder, pre["size"], pre.get("backend", "decord"), max_gb=max_gb)


def _views_of(
    loaded: LoadedModel,
    path: str,
    views: Views,
    frame_cache: FrameCache | None = None,
    single_view: bool = False,
) -> Iterator[tuple[dict, Tensor]]:
    """(row, input tensor) of each view of one file (row: the `windows` columns after path);
    images: one clip at frame 0. A file with the wrong channel count raises DecodeError."""
    pre = loaded.preprocessing
    size = int(pre["size"])
    if loaded.modality == "image":
        pad = bool(pre.get("pad_to_square"))
        transform = ImageTransform([], size, pre["mean"], pre["std"], pad_to_square=pad)
        image = read_image(path)
        image = PadToSquare().apply(image) if pad else image  # crop the image the model saw
        for crop, pixels in views.crop(image, size):
            single = single_view and crop == views.single_crop
            row = {"window": 0, "crop": crop, **dict.fromkeys(WINDOW_TIMES, 0.0)}
            yield {**row, "averaged": True, "single_view": single}, transform(pixels)  # (C, H, W)
        return
    max_norm = bool(pre.get("per_frame_max_norm", False))
    transform = ClipTransform([], size, pre["mean"], pre["std"], per_frame_max_norm=max_norm)
    if frame_cache is not None:
        reader = frame_cache.open(path)
    else:
        reader = open_video(path, backend=pre.get("backend", "decord"))
    try:
        fps = reader.fps if reader.fps > 0 else float("nan")  # arrays: frames only
        # A fixed generator: a random view sampler still gives every run the same views.
        clips = views.clips(reader.num_frames, reader.fps, np.random.default_rng(0))
        averaged = len(clips)
        centre = -1
        if single_view:
            sampler = views.centre or views.clips
            middle = sampler(reader.num_frames, reader.fps, np.random.default_rng(0))[0]
            found = [i for i, clip in enumerate(clips) if np.array_equal(clip, middle)]
            centre = found[0] if found else len(clips)
            clips = clips if found else [*clips, middle]  # read once more only when not a view
        if frame_cache is not None and clips:  # one extension of the entry to the last view
            reader.read([max(int(clip.max()) for clip in clips)])
        # Decode every clip before yielding, so a failure mid-video drops the whole file.
        decoded = [(clip, reader.read(clip)) for clip in clips]
    finally:
        reader.close()
    for window, (clip, frames) in enumerate(decoded):
        _check_channels(path, frames, pre.get("channels"))
        first, end = int(clip.min()), int(clip.max()) + 1
        timing = {
            "start_frame": first,
            "end_frame": end,
            "start_s": first / fps,
            "end_s": end / fps,
        }
        peaks = peaks_of(frames) if max_norm else None  # of whole frames, as in training
        for crop, pixels in views.crop(frames, size):
            single = window == centre and crop == views.single_crop
            if window < averaged or single:
                row = {"window": window, "crop": crop, **timing, "averaged": window < averaged}
                inputs = transform(pixels, frame_peaks=peaks)  # (T, C, H, W)
                yield {**row, "single_view": single}, inputs


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
        [pd.DataFrame(rows, columns=list(VIEW_COLUMNS)), pd.DataFrame(score_array, columns=names)],
        axis=1,
    )
    windows[["averaged", "single_view"]] = windows[["averaged", "single_view"]].astype(bool)
    files = pd.DataFrame({"path": [str(p) for p in paths], "error": errors})
    grouped = windows[windows["averaged"]].groupby("file")
    files["windows"] = grouped["window"].nunique().reindex(files.index, fill_value=0)
    files["views"] = grouped.size().reindex(files.index, fill_value=0)
    files = pd.concat([files, grouped[names].mean().reindex(files.index)], axis=1)
    return Predictions(files=files, windows=windows, score_names=names)


def top_k_table(
    predictions: Predictions, label_kind: str, k: int, threshold: float = 0.5
) -> pd.DataFrame:
    """One row per file: path, windows, views, error, then `class_i`/`probability_i` for the k
    best classes (regression: `prediction`). `class_1` is the predicted class as eval decides it
    (`vidlearn.reports.metrics.predict_classes`): binary, positive when its probability reaches
    the checkpoint's `threshold`."""
    files = predictions.files
    table = files[["path", "windows", "views", "error"]].copy()
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
