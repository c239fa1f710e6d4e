"""The row stage: from the data options to the table of rows that training and every tool read.

    read (manifest CSV or class folders) -> split or fold -> probe -> fit and encode labels

`build_rows(options, probe_backend=..., clip_samplers=..., probe_index=..., workers=...)`
returns `Rows`: the usable rows (path, label, target, split, line, group, backend), the rows
left out with the reason and the stage that left them out, and the fitted label encoder.
Training (`ManifestDataModule.setup`), `vidlearn-stats` and `vidlearn-cache` all call it, so
they agree on which files exist, their split, the backend that reads each one, and which are
bad. What probing needs (the modality's backend, each split's clip sampler) comes in as
arguments: this module knows nothing of DataModules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vidlearn.data.bad_files import check_bad_share
from vidlearn.data.clip_sampling import ClipSampler
from vidlearn.data.folds import fold_splits, read_fold
from vidlearn.data.labels import LabelEncoder
from vidlearn.data.manifest import (
    Manifest,
    ManifestError,
    Problem,
    format_problems,
    read_manifest,
    resolve_path,
    sample_paths,
    scan_folder,
)
from vidlearn.data.probe import ProbeReport, probe_rows
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.splits import SPLITS, assign_folds, assign_splits
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

SKIPPED_COLUMNS = ["path", "line", "split", "reason", "stage"]


@dataclass(frozen=True)
class RowOptions:
    """Where the rows come from and how they are split: the row keys of a `data` config.

    Exactly one of `manifest` (a CSV, read by `read_manifest` with the reading keys) and
    `folder` (one sub-folder per class, files with `extensions`). Splits, by precedence: fold
    `fold` of prepared `fold_files` (a pattern such as "folds/fold_{fold}_{split}.csv", relative
    to the manifest's folder; rows the files do not list are dropped); fold `fold` of `folds`
    generated folds (stratified, group-disjoint: the fold is validation, the rest training; drawn
    from the rows outside the split column's test rows, which stay the test split);
    the manifest's split column; otherwise a seeded, stratified, group-disjoint split with
    `val_fraction` and `test_fraction`. `classes` fixes the class order (default: the sorted
    labels of the train split). More than `max_bad_fraction` of a split failing the probe is a
    TooManyBadFilesError. Contradicting keys raise ConfigError here, at construction.
    """

    label_kind: str
    manifest: str | None = None
    folder: str | None = None
    extensions: tuple[str, ...] = ()
    root: str | None = None
    path_column: str = "path"
    path_template: str | None = None
    label_column: str = "label"
    split_column: str | None = "split"
    group_column: str | None = None
    filter: str | None = None
    classes: Sequence[str] | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    folds: int | None = None
    fold: int | None = None
    fold_files: str | None = None
    seed: int = 0
    allow_outside_root: bool = False
    check_files: bool = True
    encoding: str = "utf-8-sig"
    max_bad_fraction: float = 0.01

    def __post_init__(self) -> None:
        if (self.manifest is None) == (self.folder is None):
            raise ConfigError(
                "set exactly one of data.manifest (a CSV) and data.folder (class sub-folders)"
            )
        if self.folds is not None and self.fold_files is not None:
            raise ConfigError(
                "set one of data.folds (generate folds) and data.fold_files (prepared fold "
                "files), not both"
            )
        if self.fold is not None and self.folds is None and self.fold_files is None:
            raise ConfigError(
                "data.fold needs data.folds (the number of folds to generate) or "
                "data.fold_files (prepared fold files) to be set"
            )
        if self.fold_files is not None and self.fold is None:
            raise ConfigError(
                f"data.fold_files={self.fold_files!r} needs data.fold (which fold to train), "
                "e.g. data.fold=0, or -m data.fold=0,1,2,3,4 for every fold"
            )
        if self.fold_files is not None and self.manifest is None:
            raise ConfigError("data.fold_files needs data.manifest (the files are matched to it)")


@dataclass
class Rows:
    """The output of the row stage.

    `table`: one usable row per sample: `path` (absolute), `label` (raw), `target` (encoded),
    `split`, `line` (CSV line, header = 1; 0 for a scanned folder), `group` when the manifest
    has one, `backend` (the decoder chosen by the probe) when probed, and every other manifest
    column. `skipped`: one row per sample left out, with SKIPPED_COLUMNS (`stage` "manifest":
    the filter or a blank label; "fold": not in the fold files; "probe": the file is unusable;
    `split` is "" for rows left out before splitting). `dropped`: the rows left out before
    probing with the manifest's cells as written and `reason`, for reports. `probe`: what the
    probe found (None when not probed).
    """

    source: Path
    table: pd.DataFrame
    skipped: pd.DataFrame
    dropped: pd.DataFrame
    encoder: LabelEncoder
    probe: ProbeReport | None = None

    def split(self, name: str) -> pd.DataFrame:
        """The rows of one split, in dataset order."""
        return self.table[self.table["split"] == name].reset_index(drop=True)

    @property
    def probe_skipped(self) -> pd.DataFrame:
        """The skipped rows of stage "probe": files found unusable."""
        return self.skipped[self.skipped["stage"] == "probe"].reset_index(drop=True)


def build_rows(
    options: RowOptions,
    *,
    probe_backend: str | None = None,
    clip_samplers: Mapping[str, ClipSampler] | None = None,
    probe_index: ProbeCache | None = None,
    workers: int = 0,
    probe_timeout: float | None = 60.0,
) -> Rows:
    """Read, split, probe and encode the rows of `options`.

    `probe_backend` None skips the probe; otherwise every file is probed with it ("auto":
    decord, else PyAV per file; "image" for images) in `workers` processes, outcomes kept in
    `probe_index`, and a row whose split has a sampler in `clip_samplers` must give it a clip;
    a file whose probe takes over `probe_timeout` seconds (a hung decoder) is unusable.
    Raises ManifestError (a bad manifest, fold files, split value or label; no train rows),
    TooManyBadFilesError (a split over `max_bad_fraction` unusable).
    """
    manifest = read_rows(options)
    table = manifest.table
    table["split"] = assign_split_column(options, manifest)
    table, unlisted = drop_unlisted(table, options.fold)
    if len(unlisted):
        reason = unlisted["reason"].iloc[0]
        logger.info("%s: %d row(s) removed (%s)", manifest.source.name, len(unlisted), reason)
    skipped = [
        skipped_rows(manifest.dropped, manifest_paths(manifest, options), "manifest"),
        skipped_rows(unlisted, unlisted["path"], "fold"),
    ]
    report = None
    if probe_backend is not None:
        report = probe_rows(
            table, probe_backend, clip_samplers, probe_index, workers, timeout=probe_timeout
        )
        check_probe_share(report, table, options.max_bad_fraction)
        table = report.table
        skipped.append(report.skipped[SKIPPED_COLUMNS])
    left_out = pd.concat([part for part in skipped if len(part)] or skipped[:1], ignore_index=True)
    encoder = fit_labels(table, options, manifest.source, left_out)
    return Rows(
        source=manifest.source,
        table=table,
        skipped=left_out,
        dropped=(
            pd.concat([manifest.dropped, as_written(unlisted, options, manifest.root)])
            if len(unlisted)
            else manifest.dropped
        ),
        encoder=encoder,
        probe=report,
    )


def read_rows(options: RowOptions) -> Manifest:
    """The manifest's (or the class folders') usable rows and the rows it removed."""
    if options.folder is not None:
        return scan_folder(options.folder, options.extensions)
    return read_manifest(
        options.manifest,
        root=options.root,
        path_column=options.path_column,
        path_template=options.path_template,
        label_column=options.label_column,
        split_column=options.split_column,
        group_column=options.group_column,
        filter=options.filter,
        allow_outside_root=options.allow_outside_root,
        check_files=options.check_files,
        encoding=options.encoding,
    )


def assign_split_column(options: RowOptions, manifest: Manifest) -> np.ndarray:
    """'train' / 'val' / 'test' per row by the precedence in RowOptions ('' = not in the fold)."""
    table = manifest.table
    if options.fold_files is not None:
        return prepared_fold_splits(options, manifest)
    groups = table["group"].tolist() if options.group_column else None
    strata = stratification_labels(table["label"], options)
    if options.folds is not None:
        return fold_split_column(options, manifest, strata, groups)
    if options.split_column and "split" in table.columns:  # null: a "split" cell is data
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
    return assign_splits(strata, groups, options.val_fraction, options.test_fraction, options.seed)


def fold_split_column(
    options: RowOptions, manifest: Manifest, strata: list[str], groups: list[str] | None
) -> np.ndarray:
    """'train' / 'val' per row by generated fold `fold`; the manifest's test rows stay 'test'.

    Folds are drawn from the rows outside the test split (the split column's "test" cells), so
    a held-out test set is never trained on by any fold.
    """
    fold = 0 if options.fold is None else options.fold
    if not 0 <= fold < options.folds:
        raise ManifestError(
            f"data.fold={fold} is outside 0..{options.folds - 1} (data.folds={options.folds})"
        )
    table = manifest.table
    uses_split = options.split_column and "split" in table.columns
    test = (table["split"] == "test").to_numpy() if uses_split else np.zeros(len(table), bool)
    in_folds = np.flatnonzero(~test)
    if options.folds > len(in_folds):  # a fold without rows would validate on nothing
        raise ManifestError(
            f"data.folds={options.folds} is more than the {len(in_folds)} rows outside the test "
            "split: each fold needs at least one row; lower data.folds."
        )
    fold_of_row = assign_folds(
        np.asarray(strata)[in_folds],
        None if groups is None else [groups[i] for i in in_folds],
        options.folds,
        options.seed,
    )
    splits = np.full(len(table), "test", dtype=object)
    splits[in_folds] = np.where(fold_of_row == fold, "val", "train")
    return splits


def prepared_fold_splits(options: RowOptions, manifest: Manifest) -> np.ndarray:
    """'train' / 'val' per row from fold `fold`'s files; '' for rows they do not list."""
    rows = read_fold(
        options.fold_files,
        options.fold,
        manifest.source.parent,
        base=manifest.root,
        path_column=options.path_column,
        path_template=options.path_template,
        encoding=options.encoding,
    )
    removed = set()
    if len(manifest.dropped) and options.path_column in manifest.dropped.columns:
        written = sample_paths(
            manifest.dropped, options.path_column, options.path_template, manifest.source
        )
        removed = {resolve_path(manifest.root, path) for path in written}
    return fold_splits(manifest.table["path"], rows, manifest.source, removed)


def stratification_labels(labels: pd.Series, options: RowOptions) -> list[str]:
    """Labels to stratify on: the class, or a quantile bin of a regression target.

    Regression targets get up to 4 bins (quartiles), fewer when a bin would hold under one
    row of the smallest split or fold: stratification deals each bin out separately, and
    20 rows in quartiles of 5 would give a 10% test split no row at all.
    """
    if options.label_kind != "regression":
        return labels.tolist()
    values = pd.to_numeric(labels, errors="coerce")
    shares = (
        [1.0 / options.folds] if options.folds else [options.val_fraction, options.test_fraction]
    )
    smallest = min([share for share in shares if share > 0], default=1.0)
    numbers = values.notna()
    bins = max(1, min(4, int(numbers.sum() * smallest + 1e-9)))
    strata = pd.Series("not a number", index=values.index)  # reported by the label encoder
    if numbers.any():
        ranks = values[numbers].rank(method="first")
        strata[numbers] = pd.qcut(ranks, q=bins, labels=False).astype(str)
    return strata.tolist()


def drop_unlisted(table: pd.DataFrame, fold: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows with a split, the rows the fold files do not list, with `reason`)."""
    unlisted = (table["split"] == "").to_numpy()
    removed = table.loc[unlisted].assign(reason=f"not in the fold {fold} files")
    return table.loc[~unlisted].reset_index(drop=True), removed


def as_written(rows: pd.DataFrame, options: RowOptions, root: Path) -> pd.DataFrame:
    """Table rows back under the manifest's column names, as `dropped` lists them for reports:
    the label under `label_column`, the path relative to `root` under `path_column` (with a
    `path_template` that column is the row's own cell, kept in the table)."""
    cells = rows.rename(columns={"label": options.label_column})
    if options.path_template is None:
        cells[options.path_column] = [os.path.relpath(path, root) for path in rows["path"]]
    return cells


def skipped_rows(frame: pd.DataFrame, paths: Sequence[str], stage: str) -> pd.DataFrame:
    """Rows of `frame` (with `line`, `reason`) as skipped rows of `stage`, before splitting."""
    return pd.DataFrame(
        {
            "path": list(paths),
            "line": frame["line"].to_numpy() if len(frame) else [],
            "split": "",
            "reason": frame["reason"].to_numpy() if len(frame) else [],
            "stage": stage,
        },
        columns=SKIPPED_COLUMNS,
    )


def manifest_paths(manifest: Manifest, options: RowOptions) -> list[str]:
    """The absolute path of each row the manifest removed, resolved as kept rows are."""
    dropped = manifest.dropped
    if dropped.empty or options.path_column not in dropped.columns:
        return []
    written = sample_paths(dropped, options.path_column, options.path_template, manifest.source)
    return [resolve_path(manifest.root, path) for path in written]


def check_probe_share(report: ProbeReport, table: pd.DataFrame, max_bad_fraction: float) -> None:
    """TooManyBadFilesError when the probe found more than `max_bad_fraction` of a split bad."""
    for split, rows in report.skipped.groupby("split"):
        check_bad_share(
            str(split),
            dict(zip(rows["path"], rows["reason"], strict=True)),
            int((table["split"] == split).sum()),
            max_bad_fraction,
        )


def fit_labels(
    table: pd.DataFrame, options: RowOptions, source: Path, left_out: pd.DataFrame
) -> LabelEncoder:
    """Fit the label encoder on the train split and add the `target` column to `table`.

    The errors say what the earlier stages `left_out` (skipped rows), which is often the cause.
    """
    train_labels = table.loc[table["split"] == "train", "label"]
    if train_labels.empty:
        raise ManifestError(
            f"{source}: the train split has no rows; check the split "
            "column or data.val_fraction / data.test_fraction." + left_out_note(left_out)
        )
    try:
        encoder = LabelEncoder.fit(train_labels, options.label_kind, options.classes)
    except ValueError as error:
        raise ManifestError(f"{source}: {error}") from error
    targets, problems = encoder.encode(table["label"], table["line"].tolist())
    if problems:
        train_only = "" if options.classes else " (classes are taken from the train split)"
        probed = left_out[left_out["stage"] == "probe"]
        raise ManifestError(format_problems(source, problems) + train_only + left_out_note(probed))
    table["target"] = targets
    return encoder


def left_out_note(left_out: pd.DataFrame, limit: int = 10) -> str:
    """The skipped rows as a sentence for an error about the rows that remain: counts by reason,
    then the train files the probe found unusable (vidlearn-cache lifts max_bad_fraction, so
    an empty train split may be the only place they are named)."""
    before = left_out.loc[left_out["stage"] != "probe", "reason"].value_counts()
    parts = [f"{count} row(s) {reason}" for reason, count in before.items()]
    probed = left_out[(left_out["stage"] == "probe") & (left_out["split"] == "train")]
    if len(probed):
        parts.append(f"{len(probed)} unusable train file(s)")
    if not parts:
        return ""
    shown = probed.head(limit)
    files = "".join(
        f"\n  {path}: {reason}" for path, reason in zip(shown["path"], shown["reason"], strict=True)
    )
    return " Left out before: " + "; ".join(parts) + (":" + files if files else ".")
