"""Manifest faults, read the way a run reads them (ImageDataModule.setup): the rows a user meant, or one
ManifestError naming the file, the line and the fix, before anything trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vidlearn.data.datamodules import ImageDataModule
from vidlearn.data.manifest import ManifestError

HEADER = "path,label,split\n"
GOOD = "a.jpg,sit,train\nb.jpg,lie,train\nc.jpg,sit,val\n"


@pytest.fixture
def setup_manifest(tmp_path: Path) -> Callable[..., ImageDataModule]:
    """Write `text` (bytes or str) as data/manifest.csv beside placeholder files; run setup."""

    def _setup(text: str | bytes, files: tuple[str, ...] = (), **options: Any) -> ImageDataModule:
        folder = tmp_path / "data"
        folder.mkdir(exist_ok=True)
        for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", *files):
            (folder / name).write_bytes(b"x")  # placeholders: probe=False, these are not images
        manifest = folder / "manifest.csv"
        manifest.write_bytes(text if isinstance(text, bytes) else text.encode())
        datamodule = ImageDataModule(
            label_kind="multiclass", manifest=str(manifest), probe=False, **options
        )
        datamodule.setup("fit")
        return datamodule

    return _setup


def test_utf8_bom_and_crlf_read_like_plain_utf8(setup_manifest: Callable) -> None:
    text = ("\ufeff" + HEADER + GOOD).replace("\n", "\r\n")
    datamodule = setup_manifest(text)
    assert datamodule.classes == ["lie", "sit"] and len(datamodule.table) == 3
    assert list(datamodule.table["split"]) == ["train", "train", "val"]  # no stray "\r"


def test_quoted_comma_stays_inside_the_path(setup_manifest: Callable) -> None:
    datamodule = setup_manifest(
        HEADER + GOOD + '"d, take 2.jpg",lie,val\n', files=("d, take 2.jpg",)
    )
    assert Path(datamodule.table["path"].iloc[-1]).name == "d, take 2.jpg"


def test_latin1_manifest_names_the_line_and_data_encoding(setup_manifest: Callable) -> None:
    text = (HEADER + GOOD + "caf\u00e9.jpg,sit,val\n").encode("latin-1")
    with pytest.raises(ManifestError, match=r"manifest\.csv:5: not valid utf-8.*data\.encoding"):
        setup_manifest(text, files=("caf\u00e9.jpg",))


def test_latin1_manifest_reads_with_data_encoding(setup_manifest: Callable) -> None:
    text = (HEADER + GOOD + "caf\u00e9.jpg,sit,val\n").encode("latin-1")
    datamodule = setup_manifest(text, files=("caf\u00e9.jpg",), encoding="latin-1")
    assert Path(datamodule.table["path"].iloc[-1]).name == "caf\u00e9.jpg"


def test_missing_label_column_names_the_columns_and_the_key(setup_manifest: Callable) -> None:
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['label'\].*data\.label_column"):
        setup_manifest("path,posture\na.jpg,sit\n")


def test_blank_and_nan_labels_are_dropped_and_counted(setup_manifest: Callable) -> None:
    datamodule = setup_manifest(HEADER + GOOD + "d.jpg,,train\nb2.jpg,NaN,val\n", files=("b2.jpg",))
    assert len(datamodule.table) == 3
    assert datamodule.rows.dropped["line"].tolist() == [5, 6]
    assert set(datamodule.rows.dropped["reason"]) == {"blank label"}


def test_val_label_never_seen_in_train_names_the_line(setup_manifest: Callable) -> None:
    with pytest.raises(ManifestError) as error:
        setup_manifest(HEADER + GOOD + "d.jpg,stand,val\n")
    message = str(error.value)
    assert "'stand'" in message and "     5" in message
    assert "classes are taken from the train split" in message


def test_duplicate_row_names_both_lines(setup_manifest: Callable) -> None:
    with pytest.raises(ManifestError, match=r"5 +path +duplicate of line 2: a\.jpg"):
        setup_manifest(HEADER + GOOD + "a.jpg,sit,train\n")


def test_absolute_path_inside_the_root_is_used(setup_manifest: Callable, tmp_path: Path) -> None:
    absolute = tmp_path / "data" / "d.jpg"
    datamodule = setup_manifest(HEADER + GOOD + f"{absolute},lie,val\n")
    assert datamodule.table["path"].iloc[-1] == str(absolute)


@pytest.mark.parametrize("path", ["../escape.jpg", "/etc/hostname"])
def test_path_outside_the_root_is_refused_with_the_setting_to_allow_it(
    setup_manifest: Callable, tmp_path: Path, path: str
) -> None:
    (tmp_path / "escape.jpg").write_bytes(b"x")
    with pytest.raises(
        ManifestError, match=r"5 +path +.* is outside the data root.*allow_outside_root"
    ):
        setup_manifest(HEADER + GOOD + f"{path},lie,val\n")


@pytest.mark.parametrize("text", ["", HEADER])
def test_empty_manifest_says_what_it_needs(setup_manifest: Callable, text: str) -> None:
    with pytest.raises(ManifestError, match=r"manifest\.csv.*(is empty|no rows)"):
        setup_manifest(text)


def test_train_split_with_zero_rows_stops_setup(setup_manifest: Callable) -> None:
    with pytest.raises(ManifestError, match="the train split has no rows"):
        setup_manifest(HEADER + "a.jpg,sit,val\nb.jpg,lie,test\n")


def test_val_split_with_zero_rows_names_the_split_and_the_fix(setup_manifest: Callable) -> None:
    datamodule = setup_manifest(HEADER + "a.jpg,sit,train\nb.jpg,lie,train\n")
    with pytest.raises(ManifestError, match=r"the val split has no rows.*data\.val_fraction"):
        datamodule.val_dataloader()
