"""`vidlearn-manifest merge`, run in-process: files written, the printed table, exit statuses."""

import re
from pathlib import Path

import pytest

from vidlearn.cli.manifest import main
from vidlearn.data.manifest import read_csv


@pytest.fixture
def tranches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two tranches in the working folder as --tranche arguments; "second" has one stray file.

    "first": a.jpg and b.jpg, both labelled. "second": c.jpg labelled, d.jpg not, and a label row
    for a missing ghost.jpg.
    """
    monkeypatch.chdir(tmp_path)
    contents = {
        "first": (("a.jpg", "b.jpg"), "file,label\na.jpg,sit\nb.jpg,lie\n"),
        "second": (("c.jpg", "d.jpg"), "file,label\nc.jpg,sit\nghost.jpg,lie\n"),
    }
    for name, (files, labels) in contents.items():
        (tmp_path / "images" / name).mkdir(parents=True)
        for file in files:
            (tmp_path / "images" / name / file).write_bytes(b"x")
        (tmp_path / "labels").mkdir(exist_ok=True)
        (tmp_path / "labels" / f"{name}.csv").write_text(labels)
    return [f"--tranche={name}=images/{name}:labels/{name}.csv" for name in contents]


def row_counts(output: str, name: str) -> list[int]:
    """The numbers in the printed table row of tranche `name`."""
    line = next(line for line in output.splitlines() if re.search(rf"\b{name}\b", line))
    return [int(number) for number in re.findall(r"\b\d+\b", line)]


def test_merge_writes_the_master_csv_and_its_report(tranches: list[str], tmp_path: Path) -> None:
    status = main(["merge", *tranches, "--out", "master.csv", "--file-column", "file"])
    master = read_csv(tmp_path / "master.csv")
    assert status == 0
    assert master["path"].tolist() == [
        "images/first/a.jpg",
        "images/first/b.jpg",
        "images/second/c.jpg",
    ]
    assert master["tranche"].tolist() == ["first", "first", "second"]
    assert len(read_csv(tmp_path / "master.report.csv")) == 2


def test_merge_prints_counts_per_tranche_and_in_total(
    tranches: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["merge", *tranches, "--out", "master.csv", "--file-column", "file"])
    output = capsys.readouterr().out
    # merged, files without labels, labels without files, duplicates
    assert row_counts(output, "first") == [2, 0, 0, 0]
    assert row_counts(output, "second") == [1, 1, 1, 0]
    assert row_counts(output, "total") == [3, 1, 1, 0]
    assert "master.report.csv" in output


def test_strict_exits_1_when_anything_is_unmatched(tranches: list[str]) -> None:
    argv = ["merge", *tranches, "--out", "master.csv", "--file-column", "file", "--strict"]
    assert main(argv) == 1


def test_strict_exits_0_when_everything_matches(tranches: list[str]) -> None:
    argv = ["merge", tranches[0], "--out", "master.csv", "--file-column", "file", "--strict"]
    assert main(argv) == 0


def test_an_input_that_cannot_be_merged_exits_2_with_the_reason(
    tranches: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["merge", *tranches, "--out", "master.csv"])  # the CSVs have no `path` column
    assert status == 2
    assert "first.csv: no file column 'path'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argument", ["images/first:labels/first.csv", "first=images/first", "=a:b"]
)
def test_a_malformed_tranche_is_a_usage_error_showing_the_format(
    argument: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["merge", f"--tranche={argument}", "--out", "master.csv"])
    assert exit_info.value.code == 2
    assert "NAME=FOLDER:CSV" in capsys.readouterr().err
