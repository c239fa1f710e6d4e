"""Which rows vidlearn-eval scores: the training run's own assignment of files to splits.

vidlearn-train writes every row with its split to RUN/splits.csv. Eval scores, by default, the
rows of that file in the chosen split, so "test" means the files training held out, whatever
seed, fractions or folds made them. Given a manifest (or class folder) instead, eval scores its
rows, each in the split the run gave its file; a file the run never listed keeps the manifest's
own split column, and is never drawn into a split at random. `split=all` scores every row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vidlearn.data.labels import LabelEncoder
from vidlearn.data.manifest import ManifestError, format_problems
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

SPLIT_CHOICES = ("train", "val", "test", "all")


@dataclass
class EvalRows:
    """The rows to score (`path`, `label`, `target`, `split`, `line`) and where they came from."""

    table: pd.DataFrame
    source: str

    def describe(self, split: str) -> str:
        return f"{len(self.table)} {split} row(s) from {self.source}"


def run_directory(checkpoint: Path) -> Path:
    """RUN for RUN/checkpoints/x.ckpt; else the checkpoint's own folder."""
    return (
        checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    )


def read_run_splits(checkpoint: Path) -> pd.DataFrame | None:
    """The rows the run used, from its splits.csv (path, label, split, line, ...), or None when
    it has none. Rows listed with a `skipped` reason (files the probe found unusable) are left
    out, as training left them out of its metrics."""
    path = run_directory(checkpoint) / "splits.csv"
    if not path.is_file():
        return None
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "skipped" in rows.columns:
        skipped = rows["skipped"] != ""
        if skipped.any():
            logger.info("%s: %d row(s) the run skipped are not scored", path, skipped.sum())
        rows = rows.loc[~skipped].drop(columns="skipped").reset_index(drop=True)
    return rows


def eval_rows(
    checkpoint: Path,
    split: str,
    label_kind: str,
    classes: list[str],
    manifest_rows: pd.DataFrame | None = None,
    manifest: str = "",
) -> EvalRows:
    """The rows of `split` to score, with targets encoded in the checkpoint's class order.

    `manifest_rows` (read from `manifest` by the data group; None = the run's splits.csv rows)
    take the run's split where the run lists their file, else their own `split` cell.
    """
    if split not in SPLIT_CHOICES:
        raise ConfigError(f"split={split!r} is not one of {list(SPLIT_CHOICES)}")
    run_splits = read_run_splits(checkpoint)
    splits_csv = run_directory(checkpoint) / "splits.csv"
    if manifest_rows is None:
        if run_splits is None:
            raise ConfigError(
                f"ckpt={checkpoint}: no {splits_csv.name} in {splits_csv.parent}, so the run's "
                "rows are unknown; pass data.manifest=<csv> (its split column says each row's "
                "split, or use split=all to score every row)."
            )
        table, source = run_splits, str(splits_csv)
    else:
        table, source = _with_run_splits(manifest_rows, run_splits, manifest, splits_csv)
    chosen = table if split == "all" else table[table["split"] == split]
    if chosen.empty:
        counts = table["split"].replace("", "none").value_counts().to_dict()
        raise ConfigError(
            f"split={split}: none of the {len(table)} row(s) of {source} is in it (splits: "
            f"{counts}); choose another split, or split=all to score every row."
        )
    chosen = chosen.reset_index(drop=True)
    lines = pd.to_numeric(chosen.get("line", pd.Series(0, index=chosen.index)), errors="coerce")
    encoder = LabelEncoder.fit([], label_kind, classes or None)
    targets, problems = encoder.encode(chosen["label"].astype(str), lines.fillna(0).astype(int))
    if problems:
        raise ManifestError(format_problems(manifest or source, problems))
    chosen = chosen.assign(target=targets)
    return EvalRows(chosen, source)


def _with_run_splits(
    rows: pd.DataFrame, run_splits: pd.DataFrame | None, manifest: str, splits_csv: Path
) -> tuple[pd.DataFrame, str]:
    """`rows` with each file's split from the run, else from its own split cell ("" = none)."""
    own = rows["split"].astype(str) if "split" in rows.columns else pd.Series("", index=rows.index)
    if run_splits is None:
        logger.warning(
            "no %s beside the checkpoint: rows keep %s's own split column", splits_csv, manifest
        )
        return rows.assign(split=own.to_numpy()), manifest
    by_path = dict(zip(run_splits["path"], run_splits["split"], strict=True))
    run = rows["path"].astype(str).map(by_path)
    differ = int((run.notna() & (own != "") & (run != own)).sum())
    if differ:
        logger.warning(
            "%d row(s) of %s have another split in the run's %s; the run's split is used",
            differ,
            manifest,
            splits_csv,
        )
    known = int(run.notna().sum())
    if known == 0:
        logger.warning(
            "none of the %d row(s) of %s is a file the run lists in %s (did the data move, or "
            "data.root change?): every row keeps the manifest's own split column",
            len(rows),
            manifest,
            splits_csv,
        )
    logger.info("%d of %d row(s) of %s are files of the run", known, len(rows), manifest)
    return rows.assign(split=run.fillna(own).to_numpy()), f"{manifest} (splits: {splits_csv})"
