"""Render a DataFrame as a Markdown table (for report files) or a rich Table (for the console)."""

from __future__ import annotations

import numbers

import pandas as pd
from rich.table import Table


def _cell(value: object) -> str:
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        return f"{value:.4f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """GitHub-flavoured Markdown; floats with 4 decimals, numbers right-aligned."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def rich_table(frame: pd.DataFrame, title: str | None = None) -> Table:
    """The same table for `rich.console.Console().print`.

    Cells wrap, and a word wider than its column (a path) is folded onto the next line, never
    cut with an ellipsis: on a narrow terminal a user must still read which file a row means.
    """
    table = Table(title=title)
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(
            str(column), justify="right" if numeric else "left", overflow="fold", no_wrap=False
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    return table
