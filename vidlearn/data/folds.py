"""Prepared k-fold files: the split of every row in fold k, read from one CSV per split and fold.

A data set that ships its folds (the cardiac cine recipe: `folds/fold_<k>_{train,val}.csv`) is
trained on exactly those folds. `fold_files` is a pattern with `{fold}` and `{split}`, relative
to the manifest's folder; each file has the manifest's path (or id) column, and its rows are
matched to the manifest by the resulting sample path. Every problem (a missing file or column,
an id in both splits, an id the labels do not have) is reported at once with its file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vidlearn.data.manifest import (
    ManifestError,
    Problem,
    format_problems,
    read_csv,
    resolve_path,
    sample_paths,
)

FOLD_SPLITS = ("train", "val")


def fold_file(pattern: str, fold: int, split: str, folder: Path) -> Path:
    """The file of `split` in fold `fold`: `pattern` filled in, relative to `folder`."""
    try:
        name = pattern.format(fold=fold, split=split)
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        raise ManifestError(
            f"data.fold_files={pattern!r} is not a valid pattern ({error}); use the "
            "placeholders {fold} and {split}, e.g. 'folds/fold_{fold}_{split}.csv'."
        ) from error
    if name == pattern.format(fold=fold, split="other"):
        raise ManifestError(
            f"data.fold_files={pattern!r} has no {{split}} placeholder, so the train and val "
            "files would be the same file; e.g. 'folds/fold_{fold}_{split}.csv'."
        )
    return folder / name


def read_fold(
    pattern: str,
    fold: int,
    folder: Path,
    *,
    base: Path,
    path_column: str,
    path_template: str | None = None,
    encoding: str = "utf-8-sig",
) -> pd.DataFrame:
    """The rows of fold `fold`'s files: columns `id` (the path column's cell), `path` (absolute,
    as the manifest resolves it), `split` ('train' / 'val'), `file` and `line` (header = 1).

    Raises ManifestError for a missing file or path column, and for a sample listed in both
    splits (the files must be disjoint).
    """
    parts = []
    for split in FOLD_SPLITS:
        path = fold_file(pattern, fold, split, folder)
        if not path.is_file():
            raise ManifestError(
                f"fold file {path} (data.fold_files={pattern!r}, data.fold={fold}) does not "
                f"exist; files there: {_listing(path.parent)}. Check data.fold and the pattern."
            )
        frame = read_csv(path, encoding)
        frame.columns = [str(column).strip() for column in frame.columns]
        if path_column not in frame.columns:
            raise ManifestError(
                f"{path}: no {path_column!r} column (data.path_column) to match the manifest's "
                f"rows by; the file has: {', '.join(frame.columns)}."
            )
        written = sample_paths(frame, path_column, path_template, path)
        parts.append(
            pd.DataFrame(
                {
                    "id": frame[path_column].to_numpy(),
                    "path": [resolve_path(base, p) for p in written],
                    "split": split,
                    "file": str(path),
                    "line": np.arange(2, len(frame) + 2),
                }
            )
        )
    rows = pd.concat(parts, ignore_index=True)
    train, val = (rows[rows["split"] == split] for split in FOLD_SPLITS)
    overlap = val[val["path"].isin(set(train["path"]))]
    if len(overlap):
        first_line = train.drop_duplicates("path").set_index("path")["line"]
        problems = [
            Problem(int(row.line), "path", f"also in the train file, line {first_line[row.path]}")
            for row in overlap.itertuples()
        ]
        raise ManifestError(
            format_problems(overlap["file"].iloc[0], problems)
            + f"\nThe train and val files of fold {fold} must be disjoint; fix the fold files."
        )
    return rows


def fold_splits(
    paths: pd.Series, rows: pd.DataFrame, source: Path, removed: set[str] = frozenset()
) -> np.ndarray:
    """Split per manifest row ('train', 'val', or '' when the fold files do not list it).

    `rows` comes from `read_fold`; listed samples in `removed` (rows the manifest dropped, e.g.
    by data.filter) are ignored. Any other listed sample the manifest does not have is a
    ManifestError naming its file and line (a typo in an id, or labels and folds that do not
    belong together).
    """
    unknown = rows[~rows["path"].isin(set(paths) | set(removed))]
    if len(unknown):
        problems = [
            Problem(
                int(row.line), "id", f"{Path(row.file).name}: {row.id!r} has no row in the labels"
            )
            for row in unknown.itertuples()
        ]
        raise ManifestError(
            format_problems(f"the fold files of {source}", problems)
            + "\nEvery id in the fold files needs a row in the labels; fix one or the other."
        )
    split_of = dict(zip(rows["path"], rows["split"], strict=True))
    return np.asarray([split_of.get(path, "") for path in paths], dtype=object)


def _listing(folder: Path, limit: int = 10) -> str:
    if not folder.is_dir():
        return f"none ({folder} is not a folder)"
    names = sorted(path.name for path in folder.iterdir())
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
