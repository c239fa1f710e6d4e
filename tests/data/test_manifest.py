"""read_manifest: columns, filters, blank labels, path rules and the all-at-once problem report."""

import re
from pathlib import Path

import pytest

from vidlearn.data.manifest import ManifestError, read_manifest, scan_folder


def write(
    folder: Path,
    text: str,
    files: tuple[str, ...] = (),
    name: str = "manifest.csv",
    encoding: str = "utf-8",
) -> Path:
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(b"x")
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def test_paths_are_resolved_against_the_manifest_folder(tmp_path: Path) -> None:
    manifest = write(tmp_path, "path,label\nclips/a.mp4,sit\n", files=("clips/a.mp4",))
    assert read_manifest(manifest).table["path"].tolist() == [str(tmp_path / "clips/a.mp4")]


def test_root_overrides_the_manifest_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    manifest = write(tmp_path, "path,label\na.mp4,sit\n", files=("data/a.mp4",))
    table = read_manifest(manifest, root=tmp_path / "data").table
    assert table["path"].tolist() == [str(tmp_path / "data/a.mp4")]


def test_custom_path_and_label_columns(tmp_path: Path) -> None:
    manifest = write(tmp_path, "file,primary_posture\na.jpg,lying\n", files=("a.jpg",))
    table = read_manifest(manifest, path_column="file", label_column="primary_posture").table
    assert table["label"].tolist() == ["lying"]


def test_blank_and_nan_labels_are_dropped_and_counted(tmp_path: Path) -> None:
    manifest = write(
        tmp_path, "path,label\na.jpg,sit\nb.jpg,\nc.jpg,NaN\n", files=("a.jpg", "b.jpg", "c.jpg")
    )
    result = read_manifest(manifest)
    assert len(result.table) == 1
    assert result.dropped["reason"].tolist() == ["blank label", "blank label"]


def test_filter_uses_numeric_and_text_columns(tmp_path: Path) -> None:
    text = "path,label,num_people,occluded\na.jpg,sit,1,no\nb.jpg,sit,2,no\nc.jpg,sit,1,unknown\n"
    manifest = write(tmp_path, text, files=("a.jpg", "b.jpg", "c.jpg"))
    result = read_manifest(manifest, filter="num_people == 1 and occluded != 'unknown'")
    assert [Path(p).name for p in result.table["path"]] == ["a.jpg"]
    assert len(result.dropped) == 2


def test_bad_filter_names_the_columns(tmp_path: Path) -> None:
    manifest = write(tmp_path, "path,label\na.jpg,sit\n", files=("a.jpg",))
    with pytest.raises(ManifestError, match="columns are: path, label"):
        read_manifest(manifest, filter="people == 1")


def test_missing_column_is_named_with_the_available_ones(tmp_path: Path) -> None:
    manifest = write(tmp_path, "file,label\na.jpg,sit\n")
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['path'\].*file, label"):
        read_manifest(manifest)


def test_every_problem_is_reported_at_once_with_line_numbers(tmp_path: Path) -> None:
    text = "path,label\na.jpg,sit\na.jpg,sit\nmissing.jpg,sit\n../outside.jpg,sit\n"
    manifest = write(tmp_path, text, files=("a.jpg",))
    with pytest.raises(ManifestError) as error:
        read_manifest(manifest)
    message = str(error.value)
    assert "3 problem(s)" in message
    assert "duplicate of line 2" in message
    assert "file not found" in message and "missing.jpg" in message
    assert "outside the data root" in message
    for line in ("3", "4", "5"):
        assert f"\n  {line:>6}  path" in message


def test_path_outside_root_is_allowed_when_asked(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path, "", files=("outside.jpg",), name="unused.csv")
    manifest = write(tmp_path / "sub", "path,label\n../outside.jpg,sit\n")
    assert len(read_manifest(manifest, allow_outside_root=True).table) == 1


def test_utf8_bom_and_crlf_are_read(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    (tmp_path / "a.jpg").write_bytes(b"x")
    manifest.write_bytes(b"\xef\xbb\xbfpath,label\r\na.jpg,sit\r\n")
    assert read_manifest(manifest).table["label"].tolist() == ["sit"]


def test_latin1_file_gets_an_encoding_hint(tmp_path: Path) -> None:
    manifest = write(tmp_path, "path,label\ncaf\u00e9.jpg,sit\n", encoding="latin-1")
    with pytest.raises(ManifestError, match=r"manifest.csv:2: not valid utf-8-sig.*data.encoding"):
        read_manifest(manifest)


def test_latin1_file_reads_with_the_right_encoding(tmp_path: Path) -> None:
    manifest = write(
        tmp_path, "path,label\ncaf\u00e9.jpg,sit\n", files=("caf\u00e9.jpg",), encoding="latin-1"
    )
    assert len(read_manifest(manifest, encoding="latin-1").table) == 1


def test_empty_manifest_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no rows"):
        read_manifest(write(tmp_path, "path,label\n"))


def test_folder_of_class_subfolders_becomes_a_manifest(tmp_path: Path) -> None:
    for name in ("sit/a.jpg", "sit/b.png", "lie/c.jpg", "lie/notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    table = scan_folder(tmp_path, (".jpg", ".png")).table
    assert sorted(zip(table["label"], [Path(p).name for p in table["path"]], strict=True)) == [
        ("lie", "c.jpg"),
        ("sit", "a.jpg"),
        ("sit", "b.png"),
    ]


def test_a_file_named_with_a_leading_tilde_is_a_file_not_a_home_folder(tmp_path: Path) -> None:
    # "~draft.mp4" is no user's home: expanding it raised RuntimeError from pathlib
    manifest = write(tmp_path, "path,label\n~draft.mp4,sit\n", files=("~draft.mp4",))
    assert read_manifest(manifest).table["path"].tolist() == [str(tmp_path / "~draft.mp4")]


@pytest.mark.parametrize("key", ["manifest", "folder"])
def test_a_home_folder_of_no_user_is_a_manifest_error_naming_the_key(key: str) -> None:
    with pytest.raises(ManifestError, match=f"data.{key}"):
        if key == "manifest":
            read_manifest("~no_such_user_xyz/manifest.csv")
        else:
            scan_folder("~no_such_user_xyz/videos", (".mp4",))


def test_windows_separators_in_a_missing_path_say_to_write_slashes(tmp_path: Path) -> None:
    manifest = write(tmp_path, "path,label\nclips\\a.mp4,sit\n", files=("clips/a.mp4",))
    with pytest.raises(ManifestError, match=r"clips/a\.mp4"):
        read_manifest(manifest)


def test_a_header_naming_one_column_twice_is_refused(tmp_path: Path) -> None:
    # pandas renames the second "label" to "label.1"; the first one silently won
    manifest = write(tmp_path, "path,label,label\na.mp4,sit,stand\n", files=("a.mp4",))
    with pytest.raises(ManifestError, match=r"\['label'\] appear more than once"):
        read_manifest(manifest)


def test_a_header_may_name_a_column_like_a_renamed_duplicate(tmp_path: Path) -> None:
    manifest = write(tmp_path, "path,label,label.1\na.mp4,sit,x\n", files=("a.mp4",))
    assert read_manifest(manifest).table["label.1"].tolist() == ["x"]


def test_hidden_folders_and_files_are_not_classes_or_samples(tmp_path: Path) -> None:
    for name in ("sit/a.jpg", "sit/._a.jpg", "sit/.thumbs/b.jpg", ".ipynb_checkpoints/c.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    table = scan_folder(tmp_path, (".jpg",)).table
    assert table[["path", "label"]].values.tolist() == [[str(tmp_path / "sit/a.jpg"), "sit"]]


def test_a_folder_named_like_a_file_is_not_a_sample(tmp_path: Path) -> None:
    (tmp_path / "sit" / "frames.jpg").mkdir(parents=True)
    (tmp_path / "sit" / "a.jpg").write_bytes(b"x")
    assert scan_folder(tmp_path, (".jpg",)).table["path"].tolist() == [str(tmp_path / "sit/a.jpg")]


def test_a_path_template_asking_a_cell_for_an_attribute_is_a_manifest_error(tmp_path: Path) -> None:
    # cells are text: "{id.real}" raised AttributeError from str.format
    manifest = write(tmp_path, "id,label\n1,sit\n", files=("a1.npy",))
    with pytest.raises(ManifestError, match=r"data.path_template 'a\{id.real\}.npy'"):
        read_manifest(manifest, path_column="id", path_template="a{id.real}.npy")


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_manifest_separated_by_semicolons_or_tabs_says_to_use_commas(
    tmp_path: Path, separator: str
) -> None:
    # European spreadsheets save "path;label": the message said to rename columns
    manifest = write(tmp_path, f"path{separator}label\na.mp4{separator}sit\n", files=("a.mp4",))
    with pytest.raises(ManifestError, match=re.escape(f"separated by {separator!r}") + ".*commas"):
        read_manifest(manifest)
