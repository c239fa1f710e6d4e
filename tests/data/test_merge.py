"""merge_tranches: matching label rows to files, the master CSV, the report and the error paths."""

from pathlib import Path

import pandas as pd
import pytest

from vidlearn.data.manifest import ManifestError, read_csv, read_manifest
from vidlearn.data.merge import (
    DUPLICATE_FILE_NAME,
    DUPLICATE_LABEL,
    FILE_WITHOUT_LABEL,
    LABEL_WITHOUT_FILE,
    MergeReport,
    Tranche,
    merge_tranches,
)
from vidlearn.demo import make_images


def tranche(root: Path, name: str, files: tuple[str, ...], labels: str) -> Tranche:
    """Placeholder `files` under root/images/<name>/ and the `labels` text as labels/<name>.csv."""
    folder = root / "images" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(b"x")
    csv = root / "labels" / f"{name}.csv"
    csv.parent.mkdir(exist_ok=True)
    csv.write_text(labels)
    return Tranche(name, folder, csv)


def problems(report: MergeReport) -> list[tuple[str, str, str, int]]:
    return [(e.tranche, e.problem, e.file, e.line) for e in report.unmatched]


def test_rows_match_by_file_name_and_paths_are_relative_to_the_output(tmp_path: Path) -> None:
    first = tranche(
        tmp_path, "t1", ("a.jpg", "sub/b.jpg"), "path,label\nb.jpg,sit\nX:\\a.jpg,lie\n"
    )
    merge_tranches([first], tmp_path / "master.csv")
    master = read_csv(tmp_path / "master.csv")
    assert master["path"].tolist() == ["images/t1/sub/b.jpg", "images/t1/a.jpg"]
    assert master["label"].tolist() == ["sit", "lie"]


def test_master_csv_in_another_folder_reads_back_when_outside_root_is_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\n")
    out = tmp_path / "out" / "deeper" / "master.csv"
    merge_tranches([first], out)
    assert read_csv(out)["path"].tolist() == ["../../images/t1/a.jpg"]
    assert "data.allow_outside_root=true" in caplog.text
    table = read_manifest(out, allow_outside_root=True).table
    assert table["path"].tolist() == [str(tmp_path / "images/t1/a.jpg")]


def test_tranches_are_stacked_in_order_with_a_tranche_column(tmp_path: Path) -> None:
    second = tranche(tmp_path, "late", ("c.jpg",), "path,label\nc.jpg,sit\n")
    first = tranche(tmp_path, "early", ("a.jpg", "b.jpg"), "path,label\nb.jpg,lie\na.jpg,sit\n")
    merge_tranches([first, second], tmp_path / "master.csv")
    master = read_csv(tmp_path / "master.csv")
    assert list(master.columns) == ["path", "label", "tranche"]
    assert master["tranche"].tolist() == ["early", "early", "late"]
    assert master["path"].str.split("/").str[-1].tolist() == ["b.jpg", "a.jpg", "c.jpg"]


def test_label_columns_are_kept_and_columns_missing_from_a_tranche_left_blank(
    tmp_path: Path,
) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label,occluded\na.jpg,sit,no\n")
    second = tranche(tmp_path, "t2", ("b.jpg",), "path,label\nb.jpg,lie\n")
    merge_tranches([first, second], tmp_path / "master.csv")
    master = read_csv(tmp_path / "master.csv")
    assert list(master.columns) == ["path", "label", "occluded", "tranche"]
    assert master["occluded"].tolist() == ["no", ""]


def test_a_label_column_called_line_is_kept_as_written(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,line,label\na.jpg,assembly 3,sit\n")
    merge_tranches([first], tmp_path / "master.csv")
    assert read_csv(tmp_path / "master.csv")["line"].tolist() == ["assembly 3"]


def test_custom_file_column_is_kept_and_a_path_column_added_first(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "label,file\nsit,a.jpg\n")
    merge_tranches([first], tmp_path / "master.csv", file_column="file")
    master = read_csv(tmp_path / "master.csv")
    assert master.to_dict("records") == [
        {"path": "images/t1/a.jpg", "label": "sit", "file": "a.jpg", "tranche": "t1"}
    ]


def test_files_without_labels_and_labels_without_files_are_reported(tmp_path: Path) -> None:
    labels = "path,label\na.jpg,sit\nghost.jpg,lie\n,sit\n"
    first = tranche(tmp_path, "t1", ("a.jpg", "unlabelled.png"), labels)
    report = merge_tranches([first], tmp_path / "master.csv")
    assert sorted(problems(report)) == [
        ("t1", FILE_WITHOUT_LABEL, "unlabelled.png", 0),
        ("t1", LABEL_WITHOUT_FILE, "", 4),
        ("t1", LABEL_WITHOUT_FILE, "ghost.jpg", 3),
    ]
    assert report.tranches[0].merged == 1
    assert report.tranches[0].files_without_labels == 1
    assert report.tranches[0].labels_without_files == 2


def test_report_csv_beside_the_output_lists_every_entry(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg", "b.jpg"), "path,label\na.jpg,sit\nghost.jpg,lie\n")
    report = merge_tranches([first], tmp_path / "master.csv")
    assert report.report == tmp_path / "master.report.csv"
    written = read_csv(report.report)
    assert list(written.columns) == ["tranche", "problem", "file", "line", "detail"]
    assert written[["problem", "file", "line"]].values.tolist() == [
        [LABEL_WITHOUT_FILE, "ghost.jpg", "3"],
        [FILE_WITHOUT_LABEL, "b.jpg", ""],
    ]


def test_report_csv_is_rewritten_empty_when_everything_matches(tmp_path: Path) -> None:
    (tmp_path / "master.report.csv").write_text("stale report from an earlier run\n")
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\n")
    report = merge_tranches([first], tmp_path / "master.csv")
    assert report.unmatched == []
    assert read_csv(report.report).empty


def test_hidden_files_and_unknown_extensions_are_not_files_to_label(tmp_path: Path) -> None:
    files = ("a.jpg", ".DS_Store", "._a.jpg", ".thumbs/a2.jpg", "notes.txt", "clip.mp4")
    first = tranche(tmp_path, "t1", files, "path,label\na.jpg,sit\n")
    report = merge_tranches([first], tmp_path / "master.csv")
    assert problems(report) == [("t1", FILE_WITHOUT_LABEL, "clip.mp4", 0)]


def test_key_path_matches_the_path_inside_the_tranche_folder(tmp_path: Path) -> None:
    labels = "path,label\ncam1/a.jpg,sit\n./cam2\\a.jpg,lie\n"
    first = tranche(tmp_path, "t1", ("cam1/a.jpg", "cam2/a.jpg"), labels)
    report = merge_tranches([first], tmp_path / "master.csv", key="path")
    master = read_csv(tmp_path / "master.csv")
    assert master[["path", "label"]].values.tolist() == [
        ["images/t1/cam1/a.jpg", "sit"],
        ["images/t1/cam2/a.jpg", "lie"],
    ]
    assert report.unmatched == []


def test_one_file_name_in_two_subfolders_is_ambiguous_and_not_merged(tmp_path: Path) -> None:
    labels = "path,label\na.jpg,sit\nb.jpg,lie\n"
    first = tranche(tmp_path, "t1", ("cam1/a.jpg", "cam2/a.jpg", "b.jpg"), labels)
    report = merge_tranches([first], tmp_path / "master.csv")
    assert read_csv(tmp_path / "master.csv")["label"].tolist() == ["lie"]
    assert problems(report) == [
        ("t1", DUPLICATE_FILE_NAME, "cam1/a.jpg", 2),
        ("t1", DUPLICATE_FILE_NAME, "cam2/a.jpg", 2),
    ]
    assert report.tranches[0].duplicates == 2


def test_identical_duplicate_label_rows_merge_once_and_are_reported(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\nsub/a.jpg,sit\n")
    report = merge_tranches([first], tmp_path / "master.csv")
    assert read_csv(tmp_path / "master.csv")["label"].tolist() == ["sit"]
    assert problems(report) == [("t1", DUPLICATE_LABEL, "a.jpg", 3)]


def test_conflicting_duplicate_label_rows_are_not_merged(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\na.jpg,lie\n")
    report = merge_tranches([first], tmp_path / "master.csv")
    assert read_csv(tmp_path / "master.csv").empty
    assert problems(report) == [
        ("t1", DUPLICATE_LABEL, "a.jpg", 2),
        ("t1", DUPLICATE_LABEL, "a.jpg", 3),
    ]
    assert "disagree" in report.unmatched[0].detail


def test_same_file_name_in_two_tranches_is_two_files(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\n")
    second = tranche(tmp_path, "t2", ("a.jpg",), "path,label\na.jpg,lie\n")
    report = merge_tranches([first, second], tmp_path / "master.csv")
    assert read_csv(tmp_path / "master.csv")["path"].tolist() == [
        "images/t1/a.jpg",
        "images/t2/a.jpg",
    ]
    assert report.unmatched == []


def test_demo_labels_and_images_merge_back_into_the_demo_manifest(tmp_path: Path) -> None:
    manifest = make_images(tmp_path, seed=0, num_images=30, size=32)
    tranches = [
        Tranche(str(t), tmp_path / f"images/tranche_{t}", tmp_path / f"labels/tranche_{t}.csv")
        for t in (1, 2, 3)
    ]
    report = merge_tranches(tranches, tmp_path / "master.csv")
    expected = read_csv(manifest)
    merged = read_csv(tmp_path / "master.csv")
    assert report.unmatched == []
    pd.testing.assert_frame_equal(merged[expected.columns], expected)


def test_existing_tranche_column_that_disagrees_names_the_lines(tmp_path: Path) -> None:
    labels = "path,label,tranche\na.jpg,sit,1\nb.jpg,sit,2\nc.jpg,sit,\n"
    first = tranche(tmp_path, "1", ("a.jpg", "b.jpg", "c.jpg"), labels)
    with pytest.raises(ManifestError) as error:
        merge_tranches([first], tmp_path / "master.csv")
    message = str(error.value)
    assert "1 problem(s)" in message and str(first.labels) in message
    assert f"\n  {3:>6}  tranche" in message
    assert "paired with the wrong image folder" in message


def test_blank_cells_of_an_existing_tranche_column_get_the_tranche_name(tmp_path: Path) -> None:
    first = tranche(tmp_path, "1", ("a.jpg", "b.jpg"), "path,tranche\na.jpg,1\nb.jpg,\n")
    merge_tranches([first], tmp_path / "master.csv")
    assert read_csv(tmp_path / "master.csv")["tranche"].tolist() == ["1", "1"]


def test_missing_file_column_names_the_csv_and_its_columns(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "file,label\na.jpg,sit\n")
    with pytest.raises(
        ManifestError, match=r"t1\.csv: no file column 'path'.*file, label.*--file-column"
    ):
        merge_tranches([first], tmp_path / "master.csv")


def test_a_path_column_beside_another_file_column_is_refused(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "file,path,label\na.jpg,/old/a.jpg,sit\n")
    with pytest.raises(ManifestError, match=r"t1\.csv: column 'path' would clash"):
        merge_tranches([first], tmp_path / "master.csv", file_column="file")


def test_missing_folders_and_csvs_and_repeated_names_are_reported_together(tmp_path: Path) -> None:
    good = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\n")
    broken = [
        Tranche("t1", good.images, good.labels),
        Tranche("t2", tmp_path / "no_folder", good.labels),
        Tranche("t3", good.images, tmp_path / "no_labels.csv"),
    ]
    with pytest.raises(ManifestError) as error:
        merge_tranches([good, *broken], tmp_path / "master.csv")
    message = str(error.value)
    assert "'t1' is given twice" in message
    assert "no_folder does not exist" in message
    assert "no_labels.csv does not exist" in message


def test_the_same_folder_in_two_tranches_is_refused(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\n")
    again = Tranche("t2", first.images, first.labels)
    with pytest.raises(ManifestError, match="images/t1/a.jpg is merged from tranches t1, t2"):
        merge_tranches([first, again], tmp_path / "master.csv")


def test_output_over_a_label_csv_is_refused(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\n")
    with pytest.raises(ManifestError, match="is its label CSV"):
        merge_tranches([first], first.labels)
    assert first.labels.read_text() == "path,label\na.jpg,sit\n"


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    first = tranche(tmp_path, "t1", ("a.jpg",), "path,label\na.jpg,sit\n")
    with pytest.raises(ValueError, match="key='stem' is not one of"):
        merge_tranches([first], tmp_path / "master.csv", key="stem")
