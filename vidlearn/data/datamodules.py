"""LightningDataModules for videos (or frame arrays) and images listed in a manifest.

`setup` answers, once, the questions every run asks: which rows, which split, which classes,
which transform, which sampler. It validates everything before the first batch and raises a
ManifestError listing every problem with its CSV line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vidlearn.data.bad_files import check_bad_share
from vidlearn.data.channels import RGB, fit_statistics, resolve_channels, video_channels
from vidlearn.data.clip_sampling import ClipSampler
from vidlearn.data.datasets import ImageDataset, VideoClipDataset, collate
from vidlearn.data.folds import fold_splits, read_fold
from vidlearn.data.frame_cache import FrameCache
from vidlearn.data.labels import LabelEncoder
from vidlearn.data.manifest import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Manifest,
    ManifestError,
    Problem,
    format_problems,
    read_manifest,
    resolve_path,
    sample_paths,
    scan_folder,
)
from vidlearn.data.probe import IMAGE_BACKEND, ProbeReport, probe_rows
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.samplers import EvalShardSampler, KeyedSampler, ShuffleSampler
from vidlearn.data.splits import SPLITS, assign_folds, assign_splits
from vidlearn.data.transforms import BatchNormalisation, ClipTransform, ImageTransform
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

SamplerFactory = Callable[..., Sampler[int]]


class ManifestDataModule(pl.LightningDataModule):
    """Rows, splits, labels and loaders shared by the video and image DataModules.

    Splits, by precedence: fold `fold` of prepared `fold_files` (a pattern such as
    "folds/fold_{fold}_{split}.csv", relative to the manifest's folder; rows the files do not
    list are dropped); fold `fold` of `folds` generated folds (stratified, group-disjoint: the
    fold is validation, the rest training); the manifest's split column; otherwise a seeded,
    stratified, group-disjoint split with `val_fraction` and `test_fraction`.

    With `probe`, every row's file is then checked once (vidlearn.data.probe, outcomes kept in
    the `probe_index` SQLite file): unusable rows are dropped before the classes are fitted and
    listed in `probe_skipped`; `max_bad_fraction` of a split stops setup.

    `channels`: None = read from the first readable training file in `setup`; a number is
    checked against that file. `mean`/`std` then get one value per channel (a single value
    serves every channel), or setup raises ConfigError naming them (see vidlearn/data/channels.py).

    `normalise_on_device`: loaders yield uint8 inputs, normalised by the task on the device
    with `batch_normalisation()` (a quarter of the bytes through collate and worker transfer).
    """

    extensions: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        label_kind: str,
        manifest: str | None = None,
        folder: str | None = None,
        root: str | None = None,
        path_column: str = "path",
        path_template: str | None = None,
        label_column: str = "label",
        split_column: str | None = "split",
        group_column: str | None = None,
        filter: str | None = None,
        classes: Sequence[str] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        folds: int | None = None,
        fold: int | None = None,
        fold_files: str | None = None,
        seed: int = 0,
        size: int = 112,
        channels: int | None = None,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        augment: Sequence[Any] | None = None,
        sampler: SamplerFactory | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        timeout: float = 300.0,
        allow_outside_root: bool = False,
        check_files: bool = True,
        encoding: str = "utf-8-sig",
        max_bad_fraction: float = 0.01,
        probe: bool = True,
        probe_index: str | None = None,
        normalise_on_device: bool = False,
    ) -> None:
        super().__init__()
        if (manifest is None) == (folder is None):
            raise ConfigError(
                "set exactly one of data.manifest (a CSV) and data.folder (class sub-folders)"
            )
        if folds is not None and fold_files is not None:
            raise ConfigError(
                "set one of data.folds (generate folds) and data.fold_files (prepared fold "
                "files), not both"
            )
        if fold is not None and folds is None and fold_files is None:
            raise ConfigError(
                "data.fold needs data.folds (the number of folds to generate) or "
                "data.fold_files (prepared fold files) to be set"
            )
        if fold_files is not None and fold is None:
            raise ConfigError(
                f"data.fold_files={fold_files!r} needs data.fold (which fold to train), "
                "e.g. data.fold=0, or -m data.fold=0,1,2,3,4 for every fold"
            )
        if fold_files is not None and manifest is None:
            raise ConfigError("data.fold_files needs data.manifest (the files are matched to it)")
        self.label_kind = label_kind
        self.manifest_path = manifest
        self.folder = folder
        self.read_options = dict(
            root=root,
            path_column=path_column,
            path_template=path_template,
            label_column=label_column,
            split_column=split_column,
            group_column=group_column,
            filter=filter,
            allow_outside_root=allow_outside_root,
            check_files=check_files,
            encoding=encoding,
        )
        self.fixed_classes = list(classes) if classes else None
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.folds, self.fold, self.fold_files, self.seed = folds, fold, fold_files, seed
        self.size, self.mean, self.std = size, list(mean), list(std)
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
        self.max_bad_fraction = max_bad_fraction
        self.probe, self.probe_index = probe, probe_index
        self.probe_report: ProbeReport | None = None
        self.normalise_on_device = normalise_on_device
        self.manifest: Manifest | None = None
        self.encoder: LabelEncoder | None = None
        self.datasets: dict[str, Dataset] = {}
        self.train_sampler: Sampler[int] | None = None
        self._sampler_state: dict[str, Any] | None = None

    # -- what the rest of vidlearn reads -------------------------------------------------------
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
        """All usable rows with their `split` and encoded `target`."""
        return self._require_setup().manifest.table

    def split_rows(self, split: str) -> pd.DataFrame:
        """The rows of one split, in dataset order."""
        return self.table[self.table["split"] == split].reset_index(drop=True)

    def preprocessing(self) -> dict[str, Any]:
        """What a checkpoint must remember to feed the model new inputs the same way."""
        return {"size": self.size, "channels": self.channels, "mean": self.mean, "std": self.std}

    def batch_normalisation(self) -> BatchNormalisation | None:
        """With `normalise_on_device`, what turns the loaders' uint8 batches into model inputs."""
        return BatchNormalisation(self.mean, self.std) if self.normalise_on_device else None

    def _require_setup(self) -> ManifestDataModule:
        if self.manifest is None or self.encoder is None:
            raise RuntimeError("call setup() on the DataModule first")
        return self

    # -- Lightning hooks -----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Read, split, encode and validate the manifest, then build the datasets (once)."""
        if self.manifest is not None:
            return
        manifest = self._read()
        table = manifest.table
        table["split"] = self._splits(table, manifest)
        unlisted = table["split"] == ""
        if unlisted.any():
            reason = f"not in the fold {self.fold} files"
            logger.info("%s: %d row(s) removed (%s)", manifest.source.name, unlisted.sum(), reason)
            manifest.dropped = pd.concat(
                [manifest.dropped, table.loc[unlisted].assign(reason=reason)]
            )
            manifest.table = table = table.loc[~unlisted].reset_index(drop=True)
        if self.probe:
            manifest.table = table = self._probe(table)
        train_labels = table.loc[table["split"] == "train", "label"]
        if train_labels.empty:
            raise ManifestError(
                f"{manifest.source}: the train split has no rows; check the split "
                "column or data.val_fraction / data.test_fraction."
            )
        try:
            self.encoder = LabelEncoder.fit(train_labels, self.label_kind, self.fixed_classes)
        except ValueError as error:
            raise ManifestError(f"{manifest.source}: {error}") from error
        targets, problems = self.encoder.encode(table["label"], table["line"].tolist())
        if problems:
            train_only = "" if self.fixed_classes else " (classes are taken from the train split)"
            raise ManifestError(format_problems(manifest.source, problems) + train_only)
        table["target"] = targets
        self.manifest = manifest
        self._fit_channels(self.split_rows("train")["path"].tolist())
        for split in SPLITS:
            rows = self.split_rows(split)
            if len(rows):
                self.datasets[split] = self.build_dataset(
                    split, rows["path"].tolist(), np.asarray(rows["target"].tolist())
                )
        logger.info(
            "data: %s", ", ".join(f"{split} {len(ds)}" for split, ds in self.datasets.items())
        )

    def _probe(self, table: pd.DataFrame) -> pd.DataFrame:
        """The rows whose file passes the probe; TooManyBadFilesError when too many fail."""
        index = ProbeCache(self.probe_index) if self.probe_index else None
        report = probe_rows(
            table, self.probe_backend(), self.clip_samplers(), index, self.num_workers
        )
        for split, rows in report.skipped.groupby("split"):
            check_bad_share(
                str(split),
                dict(zip(rows["path"], rows["reason"], strict=True)),
                int((table["split"] == split).sum()),
                self.max_bad_fraction,
            )
        self.probe_report = report
        return report.table

    def probe_backend(self) -> str:
        """The backend name files are probed with; subclasses say which."""
        raise NotImplementedError

    def clip_samplers(self) -> dict[str, ClipSampler]:
        """The clip sampler of each split, which a probed video must satisfy; none by default."""
        return {}

    @property
    def probe_skipped(self) -> pd.DataFrame:
        """Files the probe found unusable: path, line, split, reason, stage; empty without probing."""
        if self.probe_report is None:
            return pd.DataFrame(columns=["path", "line", "split", "reason", "stage"])
        return self.probe_report.skipped

    def _read(self) -> Manifest:
        if self.folder is not None:
            return scan_folder(self.folder, self.extensions)
        return read_manifest(self.manifest_path, **self.read_options)

    def _splits(self, table: pd.DataFrame, manifest: Manifest) -> np.ndarray:
        if self.fold_files is not None:
            return self._prepared_fold_splits(table, manifest)
        groups = table["group"].tolist() if "group" in table.columns else None
        strata = self._strata(table["label"])
        if self.folds is not None:
            fold_of_row = assign_folds(strata, groups, self.folds, self.seed)
            if self.fold is None:
                return np.where(fold_of_row == 0, "val", "train")
            if not 0 <= self.fold < self.folds:
                raise ManifestError(
                    f"data.fold={self.fold} is outside 0..{self.folds - 1} (data.folds={self.folds})"
                )
            return np.where(fold_of_row == self.fold, "val", "train")
        if "split" in table.columns:
            unknown = ~table["split"].isin(SPLITS)
            if unknown.any():
                problems = [
                    Problem(int(line), "split", f"split {value!r} is not one of {list(SPLITS)}")
                    for line, value in zip(
                        table.loc[unknown, "line"], table.loc[unknown, "split"], strict=True
                    )
                ]
                raise ManifestError(format_problems(manifest.source, problems))
            return table["split"].to_numpy()
        return assign_splits(strata, groups, self.val_fraction, self.test_fraction, self.seed)

    def _prepared_fold_splits(self, table: pd.DataFrame, manifest: Manifest) -> np.ndarray:
        """'train' / 'val' per row from fold `fold`'s files; '' for rows they do not list."""
        options = self.read_options
        rows = read_fold(
            self.fold_files,
            self.fold,
            manifest.source.parent,
            base=manifest.root,
            path_column=options["path_column"],
            path_template=options["path_template"],
            encoding=options["encoding"],
        )
        dropped = manifest.dropped
        removed = set()
        if len(dropped) and options["path_column"] in dropped.columns:
            written = sample_paths(
                dropped, options["path_column"], options["path_template"], manifest.source
            )
            removed = {resolve_path(manifest.root, path) for path in written}
        return fold_splits(table["path"], rows, manifest.source, removed)

    def _strata(self, labels: pd.Series) -> list[str]:
        """Labels to stratify on: the class, or a quantile bin of a regression target.

        Regression targets get up to 4 bins (quartiles), fewer when a bin would hold under one
        row of the smallest split or fold: stratification deals each bin out separately, and
        20 rows in quartiles of 5 would give a 10% test split no row at all.
        """
        if self.label_kind != "regression":
            return labels.tolist()
        values = pd.to_numeric(labels, errors="coerce")
        shares = [1.0 / self.folds] if self.folds else [self.val_fraction, self.test_fraction]
        smallest = min([share for share in shares if share > 0], default=1.0)
        bins = max(1, min(4, int(len(values) * smallest + 1e-9)))
        return pd.qcut(values.rank(method="first"), q=bins, labels=False).astype(str).tolist()

    def _fit_channels(self, train_paths: list[str]) -> None:
        """Set `channels` from the training files and fit `mean`/`std` to it, before any worker."""
        self.channels, source = resolve_channels(self.channels, train_paths, self.file_channels)
        self.mean, self.std = fit_statistics(self.mean, self.std, self.channels, source)

    def file_channels(self, path: str) -> int:
        """Channels of one file as its Dataset reads it; raises DecodeError when unreadable."""
        raise NotImplementedError

    def build_dataset(self, split: str, paths: list[str], targets: np.ndarray) -> Dataset:
        """Make the Dataset of one split; subclasses choose the type and transforms."""
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
                # worker whose write stalls for data.timeout instead (FrameCache stall_s).
                timeout=0 if getattr(self, "frame_cache", None) else self.timeout,
            )
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.pin_memory,
            drop_last=drop_last,
            # The loader's own worker seeds come from here, not torch's global generator: a
            # persistent worker pool draws once per run, not per epoch, and would otherwise
            # shift the main process's stream (dropout) between a whole run and a resumed one.
            generator=torch.Generator().manual_seed(self.seed),
            **options,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_sampler is None:
            rows = self.split_rows("train")
            factory = self.sampler_factory or ShuffleSampler
            self.train_sampler = factory(targets=np.asarray(rows["target"].tolist()), table=rows)
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
    `frame_cache_max_gb` GB.
    """

    extensions = VIDEO_EXTENSIONS

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
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.frames = frames
        self.backend = backend
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
        }

    def file_channels(self, path: str) -> int:
        return video_channels(path, self.backend)

    def build_dataset(self, split: str, paths: list[str], targets: np.ndarray) -> Dataset:
        training = split == "train"
        # per_frame_max_norm is preprocessing, not augmentation: every split gets it.
        transform = ClipTransform(
            self.augment if training else [],
            self.size,
            self.mean,
            self.std,
            per_frame_max_norm=self.per_frame_max_norm,
            normalise=not self.normalise_on_device,
        )
        sampler = self.train_clip_sampler if training else self.eval_clip_sampler
        rows = self.split_rows(split)
        # The probe decided each file's backend (data.backend=auto: decord or pyav per file).
        backends = rows["backend"].tolist() if "backend" in rows.columns else None
        return VideoClipDataset(
            paths,
            targets,
            sampler,
            transform,
            backend=self.backend,
            backends=backends,
            frame_cache=self.frame_cache,
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

    def build_dataset(self, split: str, paths: list[str], targets: np.ndarray) -> Dataset:
        augment = self.augment if split == "train" else []
        transform = ImageTransform(
            augment,
            self.size,
            self.mean,
            self.std,
            pad_to_square=self.pad_to_square,
            normalise=not self.normalise_on_device,
        )
        return ImageDataset(paths, targets, transform)


def write_splits(datamodule: ManifestDataModule, folder: Path) -> Path:
    """Write every row (path, label, split, group, line, the probe's backend) to `folder/splits.csv`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "splits.csv"
    columns = [
        c
        for c in ("path", "label", "split", "group", "line", "backend")
        if c in datamodule.table.columns
    ]
    datamodule.table[columns].to_csv(target, index=False)
    return target
