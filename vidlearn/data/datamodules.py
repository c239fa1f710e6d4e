"""LightningDataModules for videos (or frame arrays) and images listed in a manifest.

`setup` takes the rows, splits and classes from the row stage (vidlearn.data.rows.build_rows,
which validates the manifest and raises a ManifestError listing every problem with its CSV
line), then answers the questions left: which dataset, transform, sampler and loader options.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vidlearn.data.bad_files import WatchedDataLoader
from vidlearn.data.channels import (
    RGB,
    check_pixel_scale,
    fit_statistics,
    resolve_channels,
    video_channels,
)
from vidlearn.data.clip_sampling import ClipSampler, temporal_sampling
from vidlearn.data.datasets import HandOverCollate, ImageDataset, VideoClipDataset, collate
from vidlearn.data.frame_cache import FrameCache
from vidlearn.data.manifest import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ManifestError
from vidlearn.data.probe import IMAGE_BACKEND, ProbeReport
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.rows import SKIPPED_COLUMNS, RowOptions, Rows, build_rows
from vidlearn.data.samplers import EvalShardSampler, KeyedSampler, ShuffleSampler
from vidlearn.data.splits import SPLITS
from vidlearn.data.transforms import BatchNormalisation, ClipTransform, ImageTransform
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

SamplerFactory = Callable[..., Sampler[int]]


class ManifestDataModule(pl.LightningDataModule):
    """Datasets, samplers and loaders over the rows of the row stage (vidlearn.data.rows).

    The row keys (`manifest` or `folder`, the reading keys, splits or folds, `classes`,
    `max_bad_fraction`) are those of `RowOptions`, checked when the DataModule is built. With
    `probe`, every row's file is checked once by the row stage (outcomes kept in the
    `probe_index` SQLite file), with this modality's backend and clip samplers. A file whose probe takes
    over `probe_timeout` seconds (a hung decoder) is unusable too.

    `channels`: None = read from the first readable training file in `setup`; a number is
    checked against that file. `mean`/`std` then get one value per channel (a single value
    serves every channel), or setup raises ConfigError naming them (see vidlearn/data/channels.py).
    A `mean`/`std` of None takes `weights_statistics` (the (mean, std) the model's pretrained
    weights were trained with, averaged to one value when the files have another channel count)
    or, without pretrained weights, the modality's `default_statistics`; setup logs which.

    `normalise_on_device`: loaders yield uint8 inputs, normalised by the task on the device
    with `batch_normalisation()` (a quarter of the bytes through collate and worker transfer);
    with `per_frame_max_norm`, batches carry each frame's peak as `peak` (B, T) float32.
    Without it, a loader with workers may still move uint8 clips and normalise them in the main
    process (`loader_dataset`); its batches are the same.
    """

    extensions: tuple[str, ...] = ()
    # (mean, std) for a model trained from scratch when data.mean/data.std are null.
    default_statistics: tuple[tuple[float, ...], tuple[float, ...]] = (
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )

    def __init__(
        self,
        *,
        label_kind: str,
        size: int = 112,
        channels: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        weights_statistics: tuple[Sequence[float], Sequence[float]] | None = None,
        augment: Sequence[Any] | None = None,
        sampler: SamplerFactory | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        timeout: float = 300.0,
        probe: bool = True,
        probe_index: str | None = None,
        probe_timeout: float | None = 60.0,
        normalise_on_device: bool = False,
        **row_options: Any,
    ) -> None:
        super().__init__()
        self.row_options = RowOptions(
            label_kind=label_kind, extensions=self.extensions, **row_options
        )
        self.size, self.mean, self.std = size, mean, std
        self.weights_statistics = weights_statistics
        self.channels = channels
        self.augment = list(augment or [])
        self.sampler_factory = sampler
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        self.timeout = timeout
        self.probe, self.probe_index = probe, probe_index
        self.probe_timeout = probe_timeout
        self.normalise_on_device = normalise_on_device
        self.rows: Rows | None = None
        self.datasets: dict[str, Dataset] = {}
        self.train_sampler: Sampler[int] | None = None
        self._sampler_state: dict[str, Any] | None = None

    # -- what the rest of vidlearn reads -------------------------------------------------------
    @property
    def label_kind(self) -> str:
        """multiclass, binary or regression: how labels become targets."""
        return self.row_options.label_kind

    @property
    def classes(self) -> list[str]:
        """Class names in target order (empty for regression); available after setup."""
        return list(self._require_setup().encoder.classes)

    @property
    def num_outputs(self) -> int:
        """Width of the model's output layer: number of classes, or 1 for binary / regression."""
        return len(self.classes) if self.label_kind == "multiclass" else 1

    @property
    def table(self) -> pd.DataFrame:
        """All usable rows with their `split` and encoded `target` (see vidlearn.data.rows)."""
        return self._require_setup().table

    def split_rows(self, split: str) -> pd.DataFrame:
        """The rows of one split, in dataset order."""
        return self._require_setup().split(split)

    @property
    def probe_report(self) -> ProbeReport | None:
        """What the probe found; None before setup or without probing."""
        return self.rows.probe if self.rows is not None else None

    @property
    def probe_skipped(self) -> pd.DataFrame:
        """Files the probe found unusable: path, line, split, reason, stage; empty without probing."""
        if self.rows is None:
            return pd.DataFrame(columns=SKIPPED_COLUMNS)
        return self.rows.probe_skipped

    def preprocessing(self) -> dict[str, Any]:
        """What a checkpoint must remember to feed the model new inputs the same way."""
        return {"size": self.size, "channels": self.channels, "mean": self.mean, "std": self.std}

    def batch_normalisation(self) -> BatchNormalisation | None:
        """With `normalise_on_device`, what turns the loaders' uint8 batches into model inputs."""
        return BatchNormalisation(self.mean, self.std) if self.normalise_on_device else None

    def _require_setup(self) -> Rows:
        if self.rows is None:
            raise RuntimeError("call setup() on the DataModule first")
        return self.rows

    # -- the row stage's arguments -------------------------------------------------------------
    def build_rows(self, workers: int | None = None) -> Rows:
        """The row stage with this DataModule's options, backend and clip samplers.

        `workers` probe processes (default `num_workers`). Training's setup, vidlearn-stats and
        vidlearn-cache all take their rows from here, so all three see the same table.
        """
        index = ProbeCache(self.probe_index) if self.probe and self.probe_index else None
        return build_rows(
            self.row_options,
            probe_backend=self.probe_backend() if self.probe else None,
            clip_samplers=self.clip_samplers(),
            probe_index=index,
            workers=self.num_workers if workers is None else workers,
            probe_timeout=self.probe_timeout,
        )

    def probe_backend(self) -> str:
        """The backend name files are probed with; subclasses say which."""
        raise NotImplementedError

    def clip_samplers(self) -> dict[str, ClipSampler]:
        """The clip sampler of each split, which a probed video must satisfy; none by default."""
        return {}

    # -- Lightning hooks -----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Take the rows from the row stage, then build the datasets (once)."""
        if self.rows is not None:
            return
        rows = self.build_rows()
        self.rows = rows
        self._fit_channels(rows.split("train")["path"].tolist())
        for split in SPLITS:
            part = rows.split(split)
            if len(part):
                self.datasets[split] = self.build_dataset(split, part)
        logger.info(
            "data: %s", ", ".join(f"{split} {len(ds)}" for split, ds in self.datasets.items())
        )

    def _fit_channels(self, train_paths: list[str]) -> None:
        """Set `channels` from the training files and fit `mean`/`std` to it, before any worker."""
        self.channels, source = resolve_channels(self.channels, train_paths, self.file_channels)
        mean, std, origin = self._chosen_statistics()
        self.mean, self.std = fit_statistics(mean, std, self.channels, source)
        logger.info("data: normalisation mean=%s std=%s (%s)", self.mean, self.std, origin)

    def _chosen_statistics(self) -> tuple[Sequence[float], Sequence[float], str]:
        """data.mean/std where set; a null one from the pretrained weights, else the default."""
        if self.mean is not None and self.std is not None:
            return self.mean, self.std, "data.mean and data.std"
        if self.weights_statistics is None:
            fallback, origin = self.default_statistics, "the default for training from scratch"
        else:
            fallback = tuple(
                values if len(values) == self.channels else [float(np.mean(values))]
                for values in self.weights_statistics
            )
            origin = "the statistics the pretrained weights were trained with"
        return (
            fallback[0] if self.mean is None else self.mean,
            fallback[1] if self.std is None else self.std,
            f"{origin}, for data.mean/data.std left null",
        )

    def file_channels(self, path: str) -> int:
        """Channels of one file as its Dataset reads it; raises DecodeError when unreadable."""
        raise NotImplementedError

    def build_dataset(self, split: str, rows: pd.DataFrame) -> Dataset:
        """Make the Dataset of one split from its rows; subclasses choose type and transforms."""
        raise NotImplementedError

    # -- loaders -------------------------------------------------------------------------------
    def _loader(self, split: str, sampler: Sampler, batch_size: int, drop_last: bool) -> DataLoader:
        workers = self.num_workers
        options: dict[str, Any] = {}
        if workers > 0:
            options = dict(
                persistent_workers=self.persistent_workers,
                prefetch_factor=self.prefetch_factor,
                # Filling the frame cache can take one batch past any timeout: the cache ends a
                # worker whose write stalls for data.timeout instead (FrameCache stall_s). A
                # read-only cache writes nothing, so only the timeout guards its misses.
                timeout=0 if self._cache_writes() else self.timeout,
            )
        dataset, normalise = self.loader_dataset(split)
        # what normalises the loader's items after it: in the main process, or on the device
        after = normalise or self.batch_normalisation()
        return WatchedDataLoader(  # its timeout names the file a worker is stuck on
            dataset,
            normalise=normalise,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate if after is None else HandOverCollate(after),
            pin_memory=self.pin_memory,
            drop_last=drop_last,
            # The loader's own worker seeds come from here, not torch's global generator: a
            # persistent worker pool draws once per run, not per epoch, and would otherwise
            # shift the main process's stream (dropout) between a whole run and a resumed one.
            generator=torch.Generator().manual_seed(self.row_options.seed),
            **options,
        )

    def loader_dataset(self, split: str) -> tuple[Dataset, BatchNormalisation | None]:
        """The dataset a split's loader reads, and what normalises its batches after the
        workers (None: its items are normalised already, or left to the device)."""
        return self.datasets[split], None

    def _cache_writes(self) -> bool:
        cache = getattr(self, "frame_cache", None)
        return cache is not None and not cache.read_only

    def train_dataloader(self) -> DataLoader:
        if self.train_sampler is None:
            rows = self.split_rows("train")
            factory = self.sampler_factory or ShuffleSampler
            self.train_sampler = factory(targets=targets_of(rows), table=rows)
            if self._sampler_state is not None:
                self.train_sampler.load_state_dict(self._sampler_state)
        drop_last = len(self.datasets["train"]) > self.batch_size
        # Keys, not bare indices: each item's random draws follow (seed, epoch, position).
        return self._loader("train", KeyedSampler(self.train_sampler), self.batch_size, drop_last)

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise ManifestError(
                f"the {split} split has no rows; add {split} rows to the manifest "
                f"or set data.{split}_fraction > 0."
            )
        return self._loader(
            split, EvalShardSampler(len(self.datasets[split])), self.eval_batch_size, False
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        """The test split in order, evaluation transforms, for `Trainer.predict`."""
        return self._eval_loader("test")

    def state_dict(self) -> dict[str, Any]:
        """Sampler position, saved in checkpoints so a resumed run continues the same sequence."""
        if self.train_sampler is not None and hasattr(self.train_sampler, "state_dict"):
            return {"train_sampler": self.train_sampler.state_dict()}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._sampler_state = state_dict.get("train_sampler")
        if self.train_sampler is not None and self._sampler_state is not None:
            self.train_sampler.load_state_dict(self._sampler_state)


class VideoDataModule(ManifestDataModule):
    """Clips of `frames` frames from videos or .npy/.npz arrays; batches `input` (B, T, C, H, W).

    `frame_cache` (a folder, or None for off) decodes each video once, at `size x size`, and
    serves every later clip from a memory map (`vidlearn.data.frame_cache`), at most
    `frame_cache_max_gb` GB; not with `per_frame_max_norm` (the cache holds resized frames, whose
    peaks are lower). `decoder_threads`: threads per video reader (1 to MAX_DECODER_THREADS), on
    a frame cache miss too; None shares the cores out among the loader's processes
    (`decoder_threads_for`).
    """

    extensions = VIDEO_EXTENSIONS
    default_statistics = ((0.5,), (0.25,))

    def __init__(
        self,
        *,
        frames: int = 16,
        backend: str = "decord",
        train_clip_sampler: Callable[[int, float], list[np.ndarray]],
        eval_clip_sampler: Callable[[int, float], list[np.ndarray]],
        per_frame_max_norm: bool = False,
        frame_cache: str | None = None,
        frame_cache_max_gb: float | None = None,
        decoder_threads: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.frames = frames
        self.backend = backend
        self.decoder_threads = decoder_threads_for(self.num_workers, decoder_threads)
        if frame_cache and per_frame_max_norm:
            raise ConfigError(
                f"data.frame_cache={frame_cache} with data.per_frame_max_norm=true: the cache "
                "holds resized frames, whose peaks are not the decoded frames' that the "
                "normalisation divides by; set data.frame_cache=null (arrays are memory-mapped "
                "without it)"
            )
        self.frame_cache = (
            FrameCache(
                frame_cache, self.size, backend, max_gb=frame_cache_max_gb, stall_s=self.timeout
            )
            if frame_cache
            else None
        )
        self.per_frame_max_norm = per_frame_max_norm
        self.train_clip_sampler = train_clip_sampler
        self.eval_clip_sampler = eval_clip_sampler

    def probe_backend(self) -> str:
        return self.backend

    def clip_samplers(self) -> dict[str, ClipSampler]:
        return {
            "train": self.train_clip_sampler,
            "val": self.eval_clip_sampler,
            "test": self.eval_clip_sampler,
        }

    def preprocessing(self) -> dict[str, Any]:
        return {
            **super().preprocessing(),
            "modality": "video",
            "frames": self.frames,
            "backend": self.backend,
            "per_frame_max_norm": self.per_frame_max_norm,
            **temporal_sampling(self.train_clip_sampler),  # views space frames as training did
        }

    def file_channels(self, path: str) -> int:
        if not self.per_frame_max_norm:
            check_pixel_scale(path, self.backend)
        return video_channels(path, self.backend)

    def loader_dataset(self, split: str) -> tuple[Dataset, BatchNormalisation | None]:
        """With workers, clips cross to the main process as uint8 and are normalised there:
        float32 clips are 4x the shared memory, which cost a cached clip more CPU in its worker
        than everything else it does (issue 23); the same numbers (`normalise_tensor`). Not
        with pinned memory (a GPU run: `normalise_on_device` normalises there), nor when a
        photometric augmentation must see max-normalised frames in the worker."""
        dataset = self.datasets[split]
        transform = dataset.transform
        if (
            self.num_workers == 0
            or self.pin_memory
            or not transform.normalise
            or (self.per_frame_max_norm and not transform.divide_last)
        ):
            return dataset, None
        handing_uint8 = copy.copy(dataset)
        handing_uint8.transform = self._clip_transform(split, normalise=False)
        return handing_uint8, BatchNormalisation(self.mean, self.std)

    def _clip_transform(self, split: str, normalise: bool) -> ClipTransform:
        # per_frame_max_norm is preprocessing, not augmentation: every split gets it.
        return ClipTransform(
            self.augment if split == "train" else [],
            self.size,
            self.mean,
            self.std,
            per_frame_max_norm=self.per_frame_max_norm,
            normalise=normalise,
        )

    def build_dataset(self, split: str, rows: pd.DataFrame) -> Dataset:
        training = split == "train"
        transform = self._clip_transform(split, normalise=not self.normalise_on_device)
        sampler = self.train_clip_sampler if training else self.eval_clip_sampler
        # The probe decided each file's backend (data.backend=auto: the first that reads it).
        backends = rows["backend"].tolist() if "backend" in rows.columns else None
        return VideoClipDataset(
            rows["path"].tolist(),
            targets_of(rows),
            sampler,
            transform,
            backend=self.backend,
            backends=backends,
            frame_cache=self.frame_cache,
            threads=self.decoder_threads,
            channels=self.channels,
        )


class ImageDataModule(ManifestDataModule):
    """Single images; batches `input` (B, C, H, W)."""

    extensions = IMAGE_EXTENSIONS

    def __init__(self, *, pad_to_square: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.pad_to_square = pad_to_square

    def probe_backend(self) -> str:
        return IMAGE_BACKEND

    def preprocessing(self) -> dict[str, Any]:
        return {**super().preprocessing(), "modality": "image", "pad_to_square": self.pad_to_square}

    def file_channels(self, path: str) -> int:
        return RGB  # read_image converts every image to RGB

    def build_dataset(self, split: str, rows: pd.DataFrame) -> Dataset:
        augment = self.augment if split == "train" else []
        transform = ImageTransform(
            augment,
            self.size,
            self.mean,
            self.std,
            pad_to_square=self.pad_to_square,
            normalise=not self.normalise_on_device,
        )
        return ImageDataset(rows["path"].tolist(), targets_of(rows), transform)


# FFmpeg warns above 16 threads per decoder; far beyond, each thread only adds its frame buffers.
MAX_DECODER_THREADS = 64


def decoder_threads_for(workers: int, requested: int | None, cores: int | None = None) -> int:
    """Threads per video reader: `requested` (data.decoder_threads), or else this process's cores
    shared out among the processes that decode (`workers`, or the main process alone), at least 1.

    One thread per worker when workers fill the cores (threads on top only contend); with fewer
    workers than cores each reader decodes on the cores left idle.
    """
    if requested is not None:
        # bool is an int to Python, but `true` is no thread count
        valid = isinstance(requested, int) and not isinstance(requested, bool)
        if not valid or not 1 <= requested <= MAX_DECODER_THREADS:
            raise ConfigError(
                f"data.decoder_threads={requested!r}: use a whole number of threads from 1 to "
                f"{MAX_DECODER_THREADS}, or null to share the cores among the loader workers"
            )
        return requested
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, cores // max(workers, 1))


def targets_of(rows: pd.DataFrame) -> np.ndarray:
    """The encoded targets of `rows` as one array (int64 classes, float32 binary / regression)."""
    return np.asarray(rows["target"].tolist())


def write_splits(datamodule: ManifestDataModule, folder: Path) -> Path:
    """Write every row to `folder/splits.csv`: path, label, split, group, line, the probe's backend,
    and `skipped`: blank for the rows used, the reason for those the probe found unusable."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "splits.csv"
    names = ("path", "label", "split", "group", "line", "backend")
    used = datamodule.table[[c for c in names if c in datamodule.table.columns]]
    report = datamodule.probe_report
    unusable = (
        report.skipped.rename(columns={"reason": "skipped"})
        if report is not None
        else pd.DataFrame(columns=["skipped"])
    )
    rows = pd.concat(
        [used.assign(skipped=""), unusable[[c for c in (*names, "skipped") if c in unusable]]],
        ignore_index=True,
    )
    rows.to_csv(target, index=False)
    return target
