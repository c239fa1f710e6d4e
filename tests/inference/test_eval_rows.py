"""The rows vidlearn-eval scores: the run's own, as training used them."""

from __future__ import annotations

from pathlib import Path

from vidlearn.inference.eval_rows import read_run_splits


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
