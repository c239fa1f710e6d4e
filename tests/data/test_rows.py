"""The row stage: options and probe arguments in, the table of rows and the skipped rows out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler
from vidlearn.data.folds import fold_file
from vidlearn.data.manifest import ManifestError
from vidlearn.data.rows import SKIPPED_COLUMNS, RowOptions, build_rows
from vidlearn.errors import ConfigError


def manifest_of(folder: Path, rows: list[str], header: str = "path,label,split") -> Path:
    """A manifest of `rows` in `folder`, with an (empty) file for each path; nothing is probed."""
    for row in rows:
        (folder / row.split(",")[0]).touch()
    manifest = folder / "manifest.csv"
    manifest.write_text(header + "\n" + "\n".join(rows) + "\n")
    return manifest


def test_table_has_path_label_target_split_and_line(tmp_path: Path) -> None:
    manifest = manifest_of(tmp_path, ["a.mp4,cat,train", "b.mp4,dog,train", "c.mp4,dog,val"])
    rows = build_rows(RowOptions("multiclass", manifest=str(manifest)))
    assert rows.table[["path", "label", "target", "split", "line"]].values.tolist() == [
        [str(tmp_path / "a.mp4"), "cat", 0, "train", 2],
        [str(tmp_path / "b.mp4"), "dog", 1, "train", 3],
        [str(tmp_path / "c.mp4"), "dog", 1, "val", 4],
    ]
    assert rows.encoder.classes == ("cat", "dog") and rows.probe is None


def test_rows_the_manifest_removes_are_skipped_at_stage_manifest(tmp_path: Path) -> None:
    manifest = manifest_of(tmp_path, ["a.mp4,cat,train", "b.mp4,dog,train", "c.mp4,,train"])
    rows = build_rows(RowOptions("multiclass", manifest=str(manifest)))
    assert rows.skipped.values.tolist() == [
        [str(tmp_path / "c.mp4"), 4, "", "blank label", "manifest"]
    ]


def test_rows_the_fold_files_do_not_list_are_skipped_at_stage_fold(tmp_path: Path) -> None:
    manifest = manifest_of(
        tmp_path, ["a.mp4,cat", "b.mp4,dog", "c.mp4,dog", "d.mp4,cat"], header="path,label"
    )
    (tmp_path / "folds").mkdir()
    (tmp_path / "folds" / "0_train.csv").write_text("path\na.mp4\nb.mp4\n")
    (tmp_path / "folds" / "0_val.csv").write_text("path\nc.mp4\n")
    options = RowOptions(
        "multiclass", manifest=str(manifest), fold_files="folds/{fold}_{split}.csv", fold=0
    )
    rows = build_rows(options)
    assert rows.skipped.values.tolist() == [
        [str(tmp_path / "d.mp4"), 5, "", "not in the fold 0 files", "fold"]
    ]
    assert rows.table["path"].tolist() == [str(tmp_path / n) for n in ("a.mp4", "b.mp4", "c.mp4")]


@pytest.mark.usefixtures("decord_then_pyav")
def test_probe_arguments_decide_backends_and_skip_unusable_files(probe_set: Path) -> None:
    options = RowOptions("multiclass", manifest=str(probe_set), max_bad_fraction=0.5)
    samplers = {"train": RandomClipSampler(4), "val": CenterClipSampler(6, short_video="skip")}
    rows = build_rows(options, probe_backend="auto", clip_samplers=samplers)
    names = rows.table["path"].map(lambda path: Path(path).name)
    assert dict(zip(names, rows.table["backend"], strict=True))["wide_48.mp4"] == "pyav"
    skipped = rows.skipped.assign(name=rows.skipped["path"].map(lambda p: Path(p).name))
    assert skipped[["name", "split", "stage"]].values.tolist() == [
        ["three_frames.mp4", "val", "probe"],
        ["empty.mp4", "train", "probe"],
    ]
    assert list(rows.skipped.columns) == SKIPPED_COLUMNS
    assert rows.probe_skipped["path"].tolist() == rows.skipped["path"].tolist()


def test_no_train_rows_is_a_manifest_error(tmp_path: Path) -> None:
    manifest = manifest_of(tmp_path, ["a.mp4,cat,val", "b.mp4,dog,test"])
    with pytest.raises(ManifestError, match="the train split has no rows"):
        build_rows(RowOptions("multiclass", manifest=str(manifest)))


def test_contradicting_options_name_the_keys() -> None:
    with pytest.raises(ConfigError, match="data.manifest .* data.folder"):
        RowOptions("multiclass", manifest="a.csv", folder="clips")


def test_the_stage_imports_no_datamodule() -> None:
    program = "import sys, vidlearn.data.rows; print('vidlearn.data.datamodules' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_a_filter_that_removes_every_row_says_so(tmp_path: Path) -> None:
    manifest = manifest_of(tmp_path, ["a.mp4,cat,train", "b.mp4,dog,train", "c.mp4,dog,val"])
    options = RowOptions("multiclass", manifest=str(manifest), filter="label == 'bird'")
    with pytest.raises(ManifestError, match="3 row\\(s\\) filter: label == 'bird'"):
        build_rows(options)


def test_train_files_all_unusable_are_named_when_the_bound_allows_them(tmp_path: Path) -> None:
    """vidlearn-cache lifts max_bad_fraction to 1 to list bad files: with every train file bad,
    the error must name them, not only say that the train split is empty."""
    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    manifest = manifest_of(tmp_path, ["broken.png,cat,train", "a.png,cat,val", "b.png,dog,val"])
    options = RowOptions("multiclass", manifest=str(manifest), max_bad_fraction=1.0)
    with pytest.raises(ManifestError, match="(?s)1 unusable train file.*broken.png"):
        build_rows(options, probe_backend="image")


def test_a_class_whose_train_files_are_all_unusable_names_them(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    manifest = manifest_of(
        tmp_path, ["a.png,cat,train", "b.png,owl,train", "broken.png,dog,train", "c.png,dog,val"]
    )
    options = RowOptions("multiclass", manifest=str(manifest), max_bad_fraction=1.0)
    with pytest.raises(ManifestError, match="(?s)label 'dog'.*1 unusable train file.*broken.png"):
        build_rows(options, probe_backend="image")


def test_rows_the_fold_files_do_not_list_keep_their_cells_as_written(tmp_path: Path) -> None:
    """vidlearn-stats lists `dropped` by the manifest's own column names: a fold-dropped row
    must show its file and label there, as a filtered row does."""
    manifest = manifest_of(
        tmp_path, ["a.mp4,cat", "b.mp4,dog", "c.mp4,dog", "d.mp4,cat"], header="file,animal"
    )
    (tmp_path / "folds").mkdir()
    (tmp_path / "folds" / "0_train.csv").write_text("file\na.mp4\nb.mp4\n")
    (tmp_path / "folds" / "0_val.csv").write_text("file\nc.mp4\n")
    options = RowOptions(
        "multiclass",
        manifest=str(manifest),
        path_column="file",
        label_column="animal",
        fold_files="folds/{fold}_{split}.csv",
        fold=0,
    )
    dropped = build_rows(options).dropped
    assert dropped[["line", "file", "animal"]].values.tolist() == [[5, "d.mp4", "cat"]]


@st.composite
def manifests(draw: st.DrawFn) -> tuple[list[str], list[int], list[str | None], str | None]:
    """Labels (some blank), a filtered column, the fold file each row is listed in, a filter."""
    count = draw(st.integers(1, 10))
    labels = draw(st.lists(st.sampled_from(["a", "b", "", "NA"]), min_size=count, max_size=count))
    sizes = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    listed = draw(st.lists(st.sampled_from(["train", "val", None]), min_size=count, max_size=count))
    return labels, sizes, listed, draw(st.sampled_from([None, "size > 0"]))


@given(manifests())
def test_every_manifest_row_is_in_the_table_or_skipped_once_with_a_reason(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[list[str], list[int], list[str | None], str | None],
) -> None:
    """Caught a planted bug: the first row the fold files do not list left out of `skipped`."""
    labels, sizes, listed, row_filter = case
    folder = tmp_path_factory.mktemp("rows")
    names = [f"v{i}.mp4" for i in range(len(labels))]
    for name in names:
        (folder / name).touch()
    pd.DataFrame({"path": names, "label": labels, "size": sizes}).to_csv(
        folder / "manifest.csv", index=False
    )
    (folder / "folds").mkdir()
    for split in ("train", "val"):
        fold = [name for name, where in zip(names, listed, strict=True) if where == split]
        pd.DataFrame({"path": fold}).to_csv(folder / "folds" / f"0_{split}.csv", index=False)
    options = RowOptions(
        "multiclass",
        manifest=str(folder / "manifest.csv"),
        filter=row_filter,
        fold_files="folds/{fold}_{split}.csv",
        fold=0,
    )
    try:
        rows = build_rows(options)
    except ManifestError:
        return  # too few rows left to train on: reported, nothing to account for
    lines = [*rows.table["line"], *rows.skipped["line"]]
    assert sorted(lines) == list(range(2, len(names) + 2))
    assert (rows.skipped["reason"].str.len() > 0).all()
    by_line = dict(zip(rows.skipped["line"], rows.skipped["path"], strict=True))
    assert by_line == {line: str(folder / names[line - 2]) for line in by_line}
    assert sorted(rows.dropped["line"]) == sorted(rows.skipped["line"])


def test_split_column_null_draws_splits_even_when_a_column_is_named_split(tmp_path: Path) -> None:
    rows = [f"v{i}.mp4,{'ab'[i % 2]},train" for i in range(20)]
    manifest = manifest_of(tmp_path, rows)
    table = build_rows(RowOptions("multiclass", manifest=str(manifest), split_column=None)).table
    assert set(table["split"]) == {"train", "val", "test"}


def test_group_column_null_ignores_a_column_named_group(tmp_path: Path) -> None:
    """One 'group' value for every row: taken as the group column, no row could be held out."""
    rows = [f"v{i}.mp4,{'ab'[i % 2]},same" for i in range(20)]
    manifest = manifest_of(tmp_path, rows, header="path,label,group")
    table = build_rows(RowOptions("multiclass", manifest=str(manifest))).table
    assert set(table["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize("pattern", ["folds/{split.x}_{fold}.csv", "folds/{fold}_{split!z}.csv"])
def test_a_fold_files_pattern_that_cannot_be_filled_is_a_manifest_error_naming_it(
    tmp_path: Path, pattern: str
) -> None:
    # "{split.x}" raised AttributeError from str.format
    with pytest.raises(ManifestError, match=r"data.fold_files=.* is not a valid pattern"):
        fold_file(pattern, 0, "train", tmp_path)


@pytest.mark.parametrize("labels", [["a", "1.5", "2", "3"], ["a", "b", "c", "d"]])
def test_drawn_splits_of_a_regression_label_that_is_not_a_number_name_its_line(
    tmp_path: Path, labels: list[str]
) -> None:
    # stratifying on quantile bins gave the text a NaN bin: IndexError in stratified_groups
    rows = [f"{i}.npy,{label}" for i, label in enumerate(labels)]
    manifest = manifest_of(tmp_path, rows, header="path,label")
    with pytest.raises(ManifestError, match=r"2 +label +regression label 'a' is not a finite"):
        build_rows(RowOptions("regression", manifest=str(manifest), val_fraction=0.25))
