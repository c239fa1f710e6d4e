"""Merge per-tranche label CSVs with the files of their image folders into one master manifest.

Annotations often arrive in tranches: a folder (an unpacked archive) of images plus a label CSV
exported for it. `merge_tranches` joins each CSV to its folder's files on the file name (or the
path inside the folder), writes one master CSV whose paths are relative to the CSV's own folder,
with every label column and a tranche column, and writes `<out stem>.report.csv` beside it listing
what did not match, so nothing is dropped silently.

Matching rules, per tranche:

- Files are those under the folder (recursively) with a known image or video extension; hidden
  files and folders (name starting with ".") are ignored.
- `key="name"`: a label cell matches the file with the same name (its last path component;
  "\\" counts as a separator, for Windows exports). `key="path"`: the cell must equal the file's
  path relative to the tranche folder ("./" and "\\" are normalised).
- Several files with one name (`key="name"`, different sub-folders): the match is ambiguous, so
  none of them is merged; each is reported as a duplicate file name.
- Several label rows for one file: if they agree in every other column, the first is merged and
  the others are reported; if they disagree, the right label is unknown, so none is merged and
  all are reported.

Across tranches, one file name in two folders is two files; folders that overlap (one given
twice, or one inside another) raise. The master CSV is written even when something is
unmatched; the report says what and where.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, astuple, dataclass, fields
from pathlib import Path

import pandas as pd

from vidlearn.data.manifest import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    ManifestError,
    Problem,
    format_problems,
    read_csv,
)
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

KEYS = ("name", "path")
PATH_COLUMN = "path"  # the master CSV's path column: read_manifest's default path_column
FILE_WITHOUT_LABEL = "file without label"
LABEL_WITHOUT_FILE = "label without file"
DUPLICATE_LABEL = "duplicate label"
DUPLICATE_FILE_NAME = "duplicate file name"


@dataclass(frozen=True)
class Tranche:
    """One delivery: its name (written to the tranche column), image folder and label CSV."""

    name: str
    images: Path
    labels: Path


@dataclass(frozen=True)
class Unmatched:
    """One report entry; field order is the report CSV's column order."""

    tranche: str
    problem: str  # FILE_WITHOUT_LABEL, LABEL_WITHOUT_FILE, DUPLICATE_LABEL or DUPLICATE_FILE_NAME
    file: str  # path inside the tranche folder, or the label cell as written
    line: int  # line in the label CSV (header = 1); 0 when the entry is a file without a label row
    detail: str


@dataclass(frozen=True)
class TrancheSummary:
    """Counts for one tranche; `duplicates` counts both duplicate kinds."""

    name: str
    merged: int
    files_without_labels: int
    labels_without_files: int
    duplicates: int


@dataclass(frozen=True)
class MergeReport:
    """What `merge_tranches` wrote and everything it could not match."""

    output: Path
    report: Path
    tranches: list[TrancheSummary]
    unmatched: list[Unmatched]


def merge_tranches(
    tranches: list[Tranche],
    out: Path,
    *,
    file_column: str = "path",
    key: str = "name",
    tranche_column: str = "tranche",
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS,
    encoding: str = "utf-8-sig",
) -> MergeReport:
    """Write the master CSV `out` from `tranches` and the report CSV beside it.

    Rows keep each tranche's label-CSV order, tranches the order given. `path` (relative to
    `out`'s folder) replaces `file_column` when that is "path" and is inserted first otherwise;
    columns missing from some tranches are left blank there. A label CSV that already has
    `tranche_column` must hold the tranche's name (or blanks) in it: anything else means the CSV
    was paired with the wrong folder. Raises ManifestError when the inputs cannot be merged.
    """
    if key not in KEYS:
        raise ConfigError(f"key={key!r} is not one of {KEYS}; use 'name' to match file names.")
    out = Path(out).expanduser().resolve()
    _check_tranches(tranches, out)
    tables, unmatched, summaries = [], [], []
    for tranche in tranches:
        table, problems = _merge_tranche(
            tranche, out.parent, file_column, key, tranche_column, extensions, encoding
        )
        tables.append(table)
        unmatched.extend(problems)
        summaries.append(_summarise(tranche.name, len(table), problems))
    master = _concat(tables, tranches, tranche_column)
    out.parent.mkdir(parents=True, exist_ok=True)
    master.to_csv(out, index=False, lineterminator="\n")
    report = out.with_name(f"{out.stem}.report.csv")
    rows = [{**asdict(entry), "line": entry.line or ""} for entry in unmatched]
    columns = [field.name for field in fields(Unmatched)]
    pd.DataFrame(rows, columns=columns).to_csv(report, index=False, lineterminator="\n")
    for summary in summaries:
        logger.info(
            "tranche %s: %d row(s) merged, %d file(s) without labels, %d label(s) without "
            "files, %d duplicate(s)",
            *astuple(summary),
        )
    if any(path.startswith("../") for path in master[PATH_COLUMN]):
        logger.warning(
            "%s: some paths lead out of its folder (../); training reads them only with "
            "data.allow_outside_root=true, or write the master CSV in a folder above the images",
            out,
        )
    if unmatched:
        logger.warning("%d unmatched or duplicate entr(ies); see %s", len(unmatched), report)
    logger.info("wrote %d row(s) to %s", len(master), out)
    return MergeReport(output=out, report=report, tranches=summaries, unmatched=unmatched)


def _check_tranches(tranches: list[Tranche], out: Path) -> None:
    """Raise ManifestError listing every missing folder or CSV and every repeated name at once."""
    if not tranches:
        raise ManifestError("no tranches to merge; give at least one (name, image folder, CSV).")
    errors = []
    seen = set()
    for tranche in tranches:
        if not tranche.name.strip():
            errors.append(f"tranche with folder {tranche.images}: empty name; give it a name.")
        elif tranche.name in seen:
            errors.append(f"tranche {tranche.name!r} is given twice; names must be unique.")
        seen.add(tranche.name)
        if not Path(tranche.images).expanduser().is_dir():
            errors.append(f"tranche {tranche.name}: image folder {tranche.images} does not exist.")
        labels = Path(tranche.labels).expanduser()
        if not labels.is_file():
            errors.append(f"tranche {tranche.name}: label CSV {tranche.labels} does not exist.")
        elif labels.resolve() == out:
            errors.append(
                f"tranche {tranche.name}: the output {out} is its label CSV; "
                "write the master CSV elsewhere."
            )
    if errors:
        raise ManifestError("cannot merge tranches:\n  " + "\n  ".join(errors))


def _merge_tranche(
    tranche: Tranche,
    out_dir: Path,
    file_column: str,
    key: str,
    tranche_column: str,
    extensions: tuple[str, ...],
    encoding: str,
) -> tuple[pd.DataFrame, list[Unmatched]]:
    """One tranche's merged rows (master columns, label-CSV order) and its report entries."""
    folder = Path(tranche.images).expanduser().resolve()
    labels_path = Path(tranche.labels).expanduser().resolve()
    labels = _read_labels(labels_path, encoding, file_column, tranche, tranche_column)
    files = _list_files(folder, extensions)
    merged, unmatched = _match(tranche.name, labels, labels_path, files, folder, file_column, key)
    table = labels.loc[sorted(merged)].copy()
    paths = [Path(os.path.relpath(folder / merged[i], out_dir)).as_posix() for i in sorted(merged)]
    if file_column == PATH_COLUMN:
        table[PATH_COLUMN] = paths
    else:
        table.insert(0, PATH_COLUMN, paths)
    table[tranche_column] = tranche.name
    return table.reset_index(drop=True), unmatched


def _match(
    name: str,
    labels: pd.DataFrame,
    labels_path: Path,
    files: list[str],
    folder: Path,
    file_column: str,
    key: str,
) -> tuple[dict[int, str], list[Unmatched]]:
    """Pair label rows with files by the rules in the module docstring.

    Returns the merged pairs (label row index -> file path inside `folder`) and the entries for
    everything else.
    """
    files_by_key: dict[str, list[str]] = defaultdict(list)
    for file in files:
        files_by_key[posixpath.basename(file) if key == "name" else file].append(file)
    rows_by_key: dict[str, list[int]] = defaultdict(list)
    for index, cell in labels[file_column].items():
        rows_by_key[_label_key(cell, key)].append(index)
    merged: dict[int, str] = {}
    unmatched = []
    for label_key, indices in rows_by_key.items():
        lines = _lines(indices)
        matches = files_by_key.get(label_key, [])
        if not matches:
            reason = f"no file {label_key!r} under {folder}" if label_key else "empty file cell"
            cells = labels.loc[indices, file_column].tolist()
            unmatched += [
                Unmatched(name, LABEL_WITHOUT_FILE, cell, line, reason)
                for cell, line in zip(cells, lines, strict=True)
            ]
        elif len(matches) > 1:
            continue  # an ambiguous file name: reported with the files below
        elif len(indices) == 1:
            merged[indices[0]] = matches[0]
        elif _agree(labels.loc[indices].drop(columns=file_column)):
            merged[indices[0]] = matches[0]
            detail = f"same values as line {lines[0]}, which was merged"
            unmatched += [
                Unmatched(name, DUPLICATE_LABEL, matches[0], n, detail) for n in lines[1:]
            ]
        else:
            detail = f"lines {', '.join(map(str, lines))} disagree; none merged"
            unmatched += [Unmatched(name, DUPLICATE_LABEL, matches[0], n, detail) for n in lines]
    for label_key, matches in files_by_key.items():
        lines = _lines(rows_by_key.get(label_key, []))
        if len(matches) > 1:
            detail = f"{len(matches)} files named {label_key!r}; none merged" + (
                f" (label line {', '.join(map(str, lines))})" if lines else ""
            )
            first_line = lines[0] if lines else 0
            unmatched += [
                Unmatched(name, DUPLICATE_FILE_NAME, file, first_line, detail) for file in matches
            ]
        elif not lines:
            detail = f"no row in {labels_path}"
            unmatched.append(Unmatched(name, FILE_WITHOUT_LABEL, matches[0], 0, detail))
    return merged, unmatched


def _read_labels(
    path: Path, encoding: str, file_column: str, tranche: Tranche, tranche_column: str
) -> pd.DataFrame:
    """The label CSV as strings (row index i is CSV line i + 2); its columns must fit the master."""
    labels = read_csv(path, encoding)
    labels.columns = [str(column).strip() for column in labels.columns]
    available = ", ".join(labels.columns)
    if file_column not in labels.columns:
        raise ManifestError(
            f"{path}: no file column {file_column!r}; the file has: {available}. "
            "Pass the column holding the file names as file_column (--file-column)."
        )
    if file_column != PATH_COLUMN and PATH_COLUMN in labels.columns:
        raise ManifestError(
            f"{path}: column {PATH_COLUMN!r} would clash with the master CSV's own "
            f"{PATH_COLUMN!r} column; rename it in the label CSV."
        )
    if tranche_column in labels.columns:
        values = labels[tranche_column].str.strip()
        wrong = labels.loc[(values != tranche.name) & (values != "")]
        if len(wrong):
            problems = [
                Problem(line, tranche_column, f"{value!r} is not the tranche name {tranche.name!r}")
                for line, value in zip(_lines(wrong.index), wrong[tranche_column], strict=True)
            ]
            raise ManifestError(
                format_problems(path, problems)
                + f"\nWas {path.name} paired with the wrong image folder ({tranche.images})? "
                "Otherwise name the new column differently (tranche_column / --tranche-column)."
            )
    return labels


def _list_files(folder: Path, extensions: tuple[str, ...]) -> list[str]:
    """Sorted posix paths, relative to `folder`, of its non-hidden files with `extensions`."""
    files = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        hidden = any(part.startswith(".") for part in relative.parts)
        if path.suffix.lower() in extensions and not hidden and path.is_file():
            files.append(relative.as_posix())
    return sorted(files)


def _lines(indices: Iterable[int]) -> list[int]:
    """CSV line numbers (header = 1) of label rows by their index."""
    return [index + 2 for index in indices]


def _agree(rows: pd.DataFrame) -> bool:
    """True when all rows hold the same values (also when there are no columns to compare)."""
    return len(set(rows.itertuples(index=False, name=None))) == 1


def _label_key(cell: str, key: str) -> str:
    """The file name or folder-relative path a label cell refers to; "" for a blank cell."""
    value = cell.strip().replace("\\", "/")
    if not value:
        return ""
    return posixpath.basename(value) if key == "name" else posixpath.normpath(value)


def _summarise(name: str, merged: int, unmatched: list[Unmatched]) -> TrancheSummary:
    counts = Counter(entry.problem for entry in unmatched)
    return TrancheSummary(
        name=name,
        merged=merged,
        files_without_labels=counts[FILE_WITHOUT_LABEL],
        labels_without_files=counts[LABEL_WITHOUT_FILE],
        duplicates=counts[DUPLICATE_LABEL] + counts[DUPLICATE_FILE_NAME],
    )


def _concat(
    tables: list[pd.DataFrame], tranches: list[Tranche], tranche_column: str
) -> pd.DataFrame:
    """Stack the tranches' rows; a file reached from two tranches (overlapping folders) raises."""
    master = pd.concat(tables, ignore_index=True, sort=False).fillna("")
    for table, tranche in zip(tables, tranches, strict=True):
        missing = [column for column in master.columns if column not in table.columns]
        if missing:
            logger.warning("tranche %s has no column(s) %s; left blank", tranche.name, missing)
    repeated = master[master.duplicated(PATH_COLUMN, keep=False)]
    if len(repeated):
        path = repeated[PATH_COLUMN].iloc[0]
        names = repeated.loc[repeated[PATH_COLUMN] == path, tranche_column].tolist()
        raise ManifestError(
            f"{path} is merged from tranches {', '.join(names)}, and {len(repeated)} row(s) in "
            "all share a path with another; give each tranche its own image folder, none "
            "inside another."
        )
    return master
