"""Make an interrupted demo generation detectable: atomic CSV writes and a marker written last.

`out/.complete` records the generator and all its arguments, so a caller can tell a finished data
set with the wanted arguments from an interrupted or stale one and regenerate only then.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

MARKER_NAME = ".complete"


def _marker_content(make: Callable[..., Path], out: Path, arguments: dict[str, object]) -> dict:
    """The marker's JSON: the generator's import path and all its arguments, defaults included."""
    bound = inspect.signature(make).bind(out, **arguments)
    bound.apply_defaults()
    recorded = {name: value for name, value in bound.arguments.items() if name != "out"}
    return {"make": f"{make.__module__}.{make.__qualname__}", "arguments": recorded}


def clear_complete(out: Path) -> None:
    """Remove the marker first, so a run interrupted from here on leaves `out` incomplete."""
    (Path(out) / MARKER_NAME).unlink(missing_ok=True)


def mark_complete(out: Path, make: Callable[..., Path], **arguments: object) -> None:
    """Write `out/.complete` recording `make` and its arguments; call it after every other file."""
    content = _marker_content(make, Path(out), arguments)
    (Path(out) / MARKER_NAME).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")


def demo_is_complete(out: Path, make: Callable[..., Path], **arguments: object) -> bool:
    """True when `out` holds a finished `make(out, **arguments)` run (defaults filled in).

    False when the marker is missing (never run, or interrupted), unreadable, or records another
    generator or other arguments: the caller should then run `make(out, **arguments)` again.
    """
    marker = Path(out) / MARKER_NAME
    try:
        recorded = json.loads(marker.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    # A JSON round trip makes tuples and lists compare alike.
    wanted = json.loads(json.dumps(_marker_content(make, Path(out), arguments)))
    return recorded == wanted


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Write a CSV through a temporary sibling and a rename, so `path` is never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    os.replace(partial, path)
