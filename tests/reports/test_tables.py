"""Tables for the terminal: what a user must read is wrapped, never cut."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from vidlearn.reports.tables import rich_table


def test_a_path_wider_than_the_terminal_is_folded_whole_into_its_column() -> None:
    path = "takes/session_01/camera_left/a_rather_long_name_of_a_take.mp4"
    console = Console(width=40, record=True)
    console.print(rich_table(pd.DataFrame({"file": [path], "reason": ["cannot be decoded"]})))
    lines = console.export_text().splitlines()
    column = "".join(line.split("│")[1].strip() for line in lines if line.count("│") > 2)
    assert path in column
