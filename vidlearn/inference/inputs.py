"""Which files to predict on: one file, every matching file under a folder, or a manifest CSV."""

from __future__ import annotations

from pathlib import Path

from vidlearn.data.manifest import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, read_csv
from vidlearn.errors import ConfigError


def list_inputs(source: str | Path, modality: str, path_column: str = "path") -> list[Path]:
    """Files named by `source` (sorted for folders, in row order for a CSV), for `modality`.

    A CSV is read as a manifest: `path_column` holds paths relative to the CSV's folder.
    """
    source = Path(source).expanduser()
    extensions = IMAGE_EXTENSIONS if modality == "image" else VIDEO_EXTENSIONS
    if source.is_dir():
        files = sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in extensions
        )
        if not files:
            raise ConfigError(
                f"input={source}: no {modality} files ({', '.join(extensions)}) in it."
            )
        return files
    if not source.is_file():
        raise ConfigError(f"input={source}: no such file or folder.")
    if source.suffix.lower() != ".csv":
        return [source]
    table = read_csv(source)
    if path_column not in table.columns:
        raise ConfigError(
            f"input={source}: the CSV has no {path_column!r} column (columns: "
            f"{', '.join(map(str, table.columns))}); set path_column=<name>."
        )
    return [source.parent / str(path) for path in table[path_column]]
