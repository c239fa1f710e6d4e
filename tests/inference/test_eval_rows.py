"""The rows vidlearn-eval scores: the run's own, as training used them."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from vidlearn.inference.eval_rows import eval_rows, read_run_splits


def test_rows_the_run_skipped_are_not_scored(tmp_path: Path) -> None:
    """splits.csv lists the probe's unusable files too (with a reason); training never scored
    them, so eval leaves them out."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "splits.csv").write_text(
        "path,label,split,line,skipped\n"
        "/d/a.mp4,x,test,2,\n"
        "/d/b.mp4,y,test,3,file is empty (0 bytes)\n"
        "/d/c.mp4,y,train,4,\n"
    )
    rows = read_run_splits(tmp_path / "checkpoints" / "best.ckpt")
    assert rows["path"].tolist() == ["/d/a.mp4", "/d/c.mp4"]
    assert "skipped" not in rows.columns


def test_a_manifest_none_of_whose_files_the_run_lists_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Data moved (another data.root): no file matches the run's splits.csv, so every row falls
    back to the manifest's own split column; that was only an info line."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "splits.csv").write_text("path,label,split,line\n/old/a.mp4,x,test,2\n")
    manifest = pd.DataFrame(
        {"path": ["/new/a.mp4"], "label": ["x"], "split": ["test"], "line": [2]}
    )
    with caplog.at_level(logging.WARNING):
        eval_rows(
            tmp_path / "checkpoints" / "best.ckpt",
            "test",
            "multiclass",
            ["x", "y"],
            manifest,
            "m.csv",
        )
    assert "none of the 1 row(s) of m.csv" in caplog.text
