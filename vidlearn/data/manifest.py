"""Read, filter and validate sample manifests (a CSV of paths and labels, or a class-folder tree).

Every problem in a manifest is collected and reported at once, as a table with row numbers,
before any training starts: a user fixes the whole file in one go instead of one error per run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidlearn.errors import UserError

logger = logging.getLogger(__name__)

# Extensions recognised when a data set is given as one sub-folder per class.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".npy", ".npz")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Label cells treated as "not annotated": the row is dropped and counted, never trained on.
BLANK_LABELS = frozenset({"", "nan", "na", "n/a", "null", "none"})


class ManifestError(UserError, ValueError):
    """A manifest cannot be used as it is; the message lists every problem found."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: its CSV line (0 = the whole file), column and reason."""

    line: int
    column: str
    message: str


@dataclass
class Manifest:
    """The usable rows of a manifest and what was removed from it.

    `table` has one row per sample with at least the columns `path` (absolute), `label`
    (raw, as written), `line` (line number in the CSV, header = 1), plus `split` and `group`
    when the source has them, and every other column of the CSV unchanged.
    `dropped` holds the removed rows with a `reason` column. `root` is the folder that relative
    paths were resolved against (None for a scanned folder, whose paths are found, not written).
    """

    source: Path
    table: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)
    root: Path | None = None


def format_problems(source: Path | str, problems: list[Problem], limit: int = 50) -> str:
    """Render problems as a plain-text table, sorted by line, at most `limit` rows."""
    rows = sorted(problems, key=lambda problem: (problem.line, problem.column))
    width = max([len(problem.column) for problem in rows] + [6])
    lines = [f"{len(rows)} problem(s) in {source}:", f"  {'line':>6}  {'column':<{width}}  problem"]
    for problem in rows[:limit]:
        where = str(problem.line) if problem.line else "-"
        lines.append(f"  {where:>6}  {problem.column:<{width}}  {problem.message}")
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more")
    return "\n".join(lines)


def read_csv(path: Path, encoding: str = "utf-8-sig") -> pd.DataFrame:
    """Read a CSV as strings; BOM and CRLF are handled, a wrong encoding or shape is explained."""
    if not path.is_file():
        raise ManifestError(
            f"manifest {path} does not exist; set data.manifest to an existing CSV."
        )
    try:
        with warnings.catch_warnings():
            # index_col=False: a row with more cells than the header is an error, not an index
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding=encoding, index_col=False
            )
    except LookupError as error:
        raise ManifestError(
            f"{path}: data.encoding={encoding!r} is not a text encoding Python knows; "
            "use e.g. utf-8-sig, latin-1 or utf-16."
        ) from error
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise ManifestError(
            f"{path}:{line}: not valid {encoding} text ({error.reason} at byte {error.start}); "
            "save the file as UTF-8, or set data.encoding (e.g. data.encoding=latin-1)."
        ) from error
    except UnicodeError as error:  # e.g. UTF-16 without a byte order mark
        raise ManifestError(
            f"{path}: not valid {encoding} text ({error}); save the file as UTF-8, "
            "or set data.encoding to the file's encoding."
        ) from error
    except pd.errors.EmptyDataError as error:
        raise ManifestError(
            f"{path} is empty; it needs a header line and one row per sample."
        ) from error
    except pd.errors.ParserWarning as error:
        raise ManifestError(
            f"{path}: some rows have more cells than the header; quote cells that hold a "
            'comma ("a,b") or name every column in the header.'
        ) from error
    except pd.errors.ParserError as error:
        raise ManifestError(f"{path} is not a readable CSV: {error}") from error
    names = [str(column).strip() for column in frame.columns]
    # pandas renames a repeated name ("label" -> "label.1"), so the header is checked as written;
    # blank names (trailing commas of spreadsheet exports) are not names and may repeat.
    written = [name.strip() for name in _header_cells(path, encoding)]
    repeated = sorted({name for name in written if name and written.count(name) > 1})
    if repeated:
        raise ManifestError(
            f"{path}: column name(s) {repeated} appear more than once in the header "
            "(spaces around names are ignored); give every column its own name."
        )
    frame.columns = names
    return frame


def _header_cells(path: Path, encoding: str) -> list[str]:
    """The header line's cells as written (read_csv has already read the file successfully)."""
    header = pd.read_csv(
        path, header=None, nrows=1, dtype=str, keep_default_na=False, encoding=encoding
    )
    return [str(cell) for cell in header.iloc[0]] if len(header) else []


def expand_user(path: str | Path, key: str) -> Path:
    """`path` with a leading ~ or ~user expanded; ManifestError naming `key` when that user has
    no home folder (pathlib raises RuntimeError)."""
    try:
        return Path(path).expanduser()
    except RuntimeError as error:
        raise ManifestError(
            f"{key}={path}: {str(path).split('/')[0]} is no user's home folder here; "
            "give the full path."
        ) from error


def read_manifest(
    manifest: str | Path,
    *,
    root: str | Path | None = None,
    path_column: str = "path",
    path_template: str | None = None,
    label_column: str = "label",
    split_column: str | None = "split",
    group_column: str | None = None,
    filter: str | None = None,
    allow_outside_root: bool = False,
    check_files: bool = True,
    encoding: str = "utf-8-sig",
) -> Manifest:
    """Read a CSV manifest, apply `filter`, drop blank labels and validate the rest.

    A row's file is its `path_column` cell, or with `path_template` (e.g. "arrays/{id}.npy")
    the template filled with the row's cells; the path column then stays in the table under its
    own name (an id). Paths are resolved against `root` (default: the manifest's folder). Raises
    ManifestError listing every problem: missing columns, duplicate paths, missing files, paths
    outside root.
    """
    source = expand_user(manifest, "data.manifest").resolve()
    columns = _Columns(path_column, label_column, split_column, group_column)
    frame = _numbered_rows(read_csv(source, encoding), source)
    _require_columns(frame, columns, source)
    frame, dropped = _drop_unlabelled_rows(frame, label_column, filter, source)
    base = expand_user(root, "data.root").resolve() if root else source.parent
    written = sample_paths(frame, path_column, path_template, source)
    table = _sample_table(frame, written, base, columns, keep_path_column=path_template is not None)
    problems = validate_paths(table, written, base, allow_outside_root, check_files)
    if problems:
        raise ManifestError(format_problems(source, problems))
    return Manifest(source=source, table=table.reset_index(drop=True), dropped=dropped, root=base)


@dataclass(frozen=True)
class _Columns:
    """The manifest columns read_manifest gives a meaning to (split and group: None = off)."""

    path: str
    label: str
    split: str | None
    group: str | None


def _numbered_rows(frame: pd.DataFrame, source: Path) -> pd.DataFrame:
    """`frame` with a first column `line`: each row's CSV line number (header = 1)."""
    if "line" in frame.columns:
        raise ManifestError(
            f"{source}: the column name 'line' is reserved for the CSV line numbers vidlearn "
            "reports; rename that column."
        )
    frame.insert(0, "line", range(2, len(frame) + 2))
    return frame


def _require_columns(frame: pd.DataFrame, columns: _Columns, source: Path) -> None:
    """Raise ManifestError when a named column is missing or the file has no rows."""
    missing = [column for column in (columns.path, columns.label) if column not in frame.columns]
    if missing:
        available = [c for c in frame.columns if c != "line"]
        separator = next(
            (s for s in (";", "\t", "|") if len(available) == 1 and s in available[0]), None
        )
        fix = (
            f"The file seems separated by {separator!r}: save it with commas between cells."
            if separator
            else "Rename them or set data.path_column / data.label_column."
        )
        raise ManifestError(
            f"{source}: missing column(s) {missing}; the file has: {', '.join(available)}. {fix}"
        )
    if frame.empty:
        raise ManifestError(f"{source} has a header but no rows; add one row per sample.")
    if columns.group and columns.group not in frame.columns:
        raise ManifestError(
            f"{source}: group column {columns.group!r} (data.group_column) not found."
        )


def _drop_unlabelled_rows(
    frame: pd.DataFrame, label_column: str, filter: str | None, source: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows `filter` keeps that have a label, and the others with a `reason` column."""
    dropped = []
    if filter:
        kept = _apply_filter(frame, filter, source)
        dropped.append(frame.loc[~kept].assign(reason=f"filter: {filter}"))
        frame = frame.loc[kept]
    blank = frame[label_column].str.strip().str.lower().isin(BLANK_LABELS)
    if blank.any():
        dropped.append(frame.loc[blank].assign(reason="blank label"))
        frame = frame.loc[~blank]
    dropped_rows = pd.concat(dropped) if dropped else frame.iloc[0:0].assign(reason="")
    if len(dropped_rows):
        logger.info(
            "%s: %d row(s) removed (%s)",
            source.name,
            len(dropped_rows),
            ", ".join(f"{n} {r}" for r, n in dropped_rows["reason"].value_counts().items()),
        )
    return frame, dropped_rows


def _sample_table(
    frame: pd.DataFrame, written: list[str], base: Path, columns: _Columns, keep_path_column: bool
) -> pd.DataFrame:
    """One row per sample: absolute `path`, `label`, `line`, `split`/`group` when read, then
    every other column of the CSV (the path column too when a template built the paths)."""
    table = pd.DataFrame(
        {
            "path": [resolve_path(base, p) for p in written],
            "label": frame[columns.label].str.strip().to_numpy(),
            "line": frame["line"].to_numpy(),
        }
    )
    if columns.split and columns.split in frame.columns:
        table["split"] = frame[columns.split].str.strip().str.lower().to_numpy()
    if columns.group:
        table["group"] = frame[columns.group].to_numpy()
    for column in frame.columns:
        if column in table.columns or column == columns.label:
            continue
        if column != columns.path or keep_path_column:
            table[column] = frame[column].to_numpy()
    return table


def _apply_filter(frame: pd.DataFrame, query: str, source: Path) -> pd.Series:
    """Evaluate a pandas query on the manifest with numeric-looking columns as numbers."""
    typed = frame.apply(_as_numbers_if_possible)
    try:
        kept = typed.eval(query)
    except Exception as error:  # pandas raises many types for a bad query string
        raise ManifestError(
            f"data.filter {query!r} cannot be evaluated on {source} ({type(error).__name__}: {error}); "
            f"columns are: {', '.join(c for c in frame.columns if c != 'line')}."
        ) from error
    if not isinstance(kept, pd.Series) or kept.dtype != bool:
        raise ManifestError(f"data.filter {query!r} must be a condition (true/false per row).")
    return kept


def _as_numbers_if_possible(column: pd.Series) -> pd.Series:
    """Return the column as numbers when every non-blank cell is one, else unchanged."""
    numbers = pd.to_numeric(column.replace("", None), errors="coerce")
    return numbers if numbers.notna().sum() == (column != "").sum() else column


def sample_paths(
    frame: pd.DataFrame, path_column: str, path_template: str | None, source: Path
) -> list[str]:
    """Each row's path as written: its `path_column` cell, or `path_template` filled with its cells.

    A blank path cell stays blank (reported as an empty path), not "arrays/.npy".
    """
    if path_template is None:
        return frame[path_column].tolist()
    paths = []
    for row in frame.to_dict("records"):
        if not str(row[path_column]).strip():
            paths.append("")
            continue
        try:
            paths.append(path_template.format_map({k: str(v).strip() for k, v in row.items()}))
        except KeyError as error:
            columns = ", ".join(c for c in frame.columns if c != "line")
            raise ManifestError(
                f"{source}: data.path_template {path_template!r} names column {error}, which "
                f"the file lacks; its columns are: {columns}."
            ) from error
        except (ValueError, IndexError, AttributeError) as error:  # cells are text
            raise ManifestError(
                f"data.path_template {path_template!r} is not a valid template ({error}); "
                "write column names in braces, e.g. 'arrays/{id}.npy'."
            ) from error
    return paths


def resolve_path(base: Path, path: str) -> str:
    """Join a manifest path to its root without following symlinks.

    A leading ~ is a home folder where there is one; "~draft.mp4" (no user "draft.mp4") is a file.
    """
    written = Path(path.strip())
    with contextlib.suppress(RuntimeError):  # no such user: the ~ is part of the file's name
        written = written.expanduser()
    return os.path.normpath(base / written)


def validate_paths(
    table: pd.DataFrame, written: list[str], base: Path, allow_outside_root: bool, check_files: bool
) -> list[Problem]:
    """Find empty, duplicate, missing and out-of-root paths; one Problem per row and reason."""
    problems = []
    duplicated = table["path"].duplicated(keep="first")
    first_line = table.drop_duplicates("path").set_index("path")["line"]
    root = str(base)
    for (_, row), raw, is_duplicate in zip(table.iterrows(), written, duplicated, strict=True):
        if not raw.strip():
            problems.append(Problem(row.line, "path", "empty path"))
            continue
        if is_duplicate:
            problems.append(
                Problem(row.line, "path", f"duplicate of line {first_line[row.path]}: {raw}")
            )
        inside = row.path == root or row.path.startswith(root.rstrip(os.sep) + os.sep)
        if not inside and not allow_outside_root:
            problems.append(
                Problem(
                    row.line,
                    "path",
                    f"{raw} is outside the data root {root} "
                    "(set data.allow_outside_root=true if intended)",
                )
            )
        elif check_files and not os.path.isfile(row.path):
            problems.append(
                Problem(row.line, "path", f"file not found: {row.path}{_separator_hint(raw)}")
            )
    return problems


def _separator_hint(raw: str) -> str:
    """What to change in a missing path written with Windows separators."""
    if "\\" not in raw or os.sep == "\\":
        return ""
    slashed = raw.strip().replace("\\", "/")
    return f" (write / between folders, e.g. {slashed}: here \\ is part of a file name)"


def scan_folder(folder: str | Path, extensions: tuple[str, ...]) -> Manifest:
    """Build a manifest from one sub-folder per class; files directly in `folder` are ignored."""
    source = expand_user(folder, "data.folder").resolve()
    if not source.is_dir():
        raise ManifestError(
            f"data folder {source} does not exist; set data.folder to a folder "
            "with one sub-folder per class."
        )
    # Hidden entries (.ipynb_checkpoints, .git, macOS "._" copies) are neither classes nor samples.
    rows = [
        {"path": str(path), "label": class_dir.name}
        for class_dir in sorted(p for p in source.iterdir() if p.is_dir() and not _hidden(p.name))
        for path in sorted(class_dir.rglob("*"))
        if path.suffix.lower() in extensions
        and not any(_hidden(part) for part in path.relative_to(class_dir).parts)
        and path.is_file()
    ]
    if not rows:
        raise ManifestError(
            f"{source}: no files with extensions {', '.join(extensions)} in its "
            "class sub-folders (expected FOLDER/<class>/<file>)."
        )
    table = pd.DataFrame(rows)
    table.insert(2, "line", 0)
    return Manifest(source=source, table=table)


def _hidden(name: str) -> bool:
    return name.startswith(".")
