"""Property: whatever a manifest file holds, read_manifest returns a table or raises a UserError.

A user's CSV can be anything: bytes in any encoding, a byte order mark, quoting, column names
that are empty, repeated or padded with spaces. vidlearn must answer each with a Manifest or one
message the user can act on (a `vidlearn.errors.UserError`, which the console scripts print
without a traceback), never another exception.

Planted bug these tests caught: removing `except UnicodeError` from
`vidlearn.data.manifest.read_csv` (reading a file without a byte order mark as utf-16 then raised
a bare UnicodeError, "UTF-16 stream does not start with BOM"); both tests failed. (Removing the
repeated-column check was not caught in the default 30 examples; the fuzz regression test
tests/faults/test_fuzz_regressions.py holds that case.)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from vidlearn.data.manifest import Manifest, read_manifest
from vidlearn.errors import UserError

ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252", "ascii"]
# Column names users write: the expected ones, padded (so repeated once stripped), renamed,
# unicode, empty, reserved; drawn from a small pool so that repeats are common.
POOL = st.sampled_from(["path", " path ", "label", "label ", "split", "", "line", "日本"])
NAMES = st.one_of(POOL, POOL, POOL, st.text(max_size=6))
CELLS = st.one_of(
    st.sampled_from(["a.mp4", "b.mp4", "../x.mp4", "/abs.mp4", "", "nan", "1e400", "x: y.mp4"]),
    st.text(max_size=8),
)
QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]


def read_or_user_error(path: Path, encoding: str) -> Manifest | UserError:
    """read_manifest's answer: the Manifest, or the UserError it raised (anything else escapes)."""
    try:
        return read_manifest(path, encoding=encoding, check_files=False)
    except UserError as error:
        return error


def check_answer(answer: Manifest | UserError) -> None:
    if isinstance(answer, Manifest):
        assert {"path", "label", "line"} <= set(answer.table.columns)
        assert isinstance(answer.table, pd.DataFrame)
    else:
        assert str(answer)


@given(content=st.binary(max_size=300), encoding=st.sampled_from(ENCODINGS))
def test_any_bytes_give_a_table_or_a_user_error(
    tmp_path: Path, content: bytes, encoding: str
) -> None:
    path = tmp_path / "manifest.csv"
    path.write_bytes(content)
    check_answer(read_or_user_error(path, encoding))


@given(
    header=st.lists(NAMES, min_size=1, max_size=5),
    rows=st.lists(st.lists(CELLS, min_size=2, max_size=6), min_size=1, max_size=5),
    quoting=st.sampled_from(QUOTING),
    written=st.sampled_from(ENCODINGS[:5]),
    read=st.sampled_from(ENCODINGS),
)
def test_any_table_in_any_encoding_gives_a_table_or_a_user_error(
    tmp_path: Path,
    header: list[str],
    rows: list[list[str]],
    quoting: int,
    written: str,
    read: str,
) -> None:
    text = io.StringIO()
    writer = csv.writer(text, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "manifest.csv"
    path.write_bytes(text.getvalue().encode(written, errors="replace"))
    check_answer(read_or_user_error(path, read))
