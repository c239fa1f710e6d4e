"""Property: the paths and labels a user writes, or the folders they lay out, are read as written.

A manifest cell can name a file with spaces, accents, CJK, commas, quotes, a leading ~ or #, in
a sub-folder, relative, as ./relative or absolute, in a CSV with a byte order mark, CRLF line
ends and any quoting; labels can be any text. `read_manifest` must give back exactly those files
and labels (blank labels dropped), never another exception. A class-folder tree can hold nested
folders, hidden files and folders, other file types and empty classes; `scan_folder` must list
exactly the visible files with the wanted extensions, labelled by their class folder.

Planted bugs these tests caught: making `resolve_path` expand a leading ~ unconditionally again
(a cell "~nouser_a.npy" raised RuntimeError from pathlib), and removing the hidden-name filter of
`scan_folder` (".ipynb_checkpoints" became a class).
"""

from __future__ import annotations

import csv
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidlearn.data.manifest import BLANK_LABELS, ManifestError, read_manifest, scan_folder

# Printable characters of every script, plus the ones CSV and shells treat specially.
CHARACTERS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/\\\x00"
)
NAME = st.one_of(
    st.text(CHARACTERS, min_size=1, max_size=8),
    st.sampled_from(["a b", "é", "日本", "a,b", 'say "hi"', "#1", "~nouser_a", "x;y"]),
).filter(
    # "~" and "~root" are home folders by design; "~nouser_a" (no such user) is a file
    lambda name: (
        name == name.strip() and name not in (".", "..") and os.path.expanduser(name) == name
    )
)
RELATIVE = st.lists(NAME, min_size=1, max_size=3).map("/".join)
LABEL = st.one_of(
    st.text(CHARACTERS, max_size=6),
    st.sampled_from(["1", "01", "1.0", "NaN", "nan", " sit ", "", "null", "True", "1e400"]),
)


@given(
    files=st.lists(RELATIVE, min_size=1, max_size=5, unique_by=lambda p: p.casefold()),
    data=st.data(),
    style=st.sampled_from(["relative", "dot", "absolute"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_any_written_paths_and_labels_are_read_as_written(
    tmp_path_factory: pytest.TempPathFactory,
    files: list[str],
    data: st.DataObject,
    style: str,
    quoting: int,
    encoding: str,
    newline: str,
) -> None:
    root = tmp_path_factory.mktemp("paths")
    # a name that is also a folder of another (a and a/b, or a and a/b/c) cannot be made;
    # case-folded for macOS
    folders = {
        "/".join(parts[:depth])
        for parts in (p.casefold().split("/") for p in files)
        for depth in range(1, len(parts))
    }
    files = [p for p in files if p.casefold() not in folders]
    labels = data.draw(st.lists(LABEL, min_size=len(files), max_size=len(files)))
    written = []
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
        written.append({"relative": name, "dot": f"./{name}", "absolute": str(root / name)}[style])
    with open(root / "manifest.csv", "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, quoting=quoting, lineterminator=newline)
        writer.writerows([["path", "label"], *zip(written, labels, strict=True)])

    table = read_manifest(root / "manifest.csv").table

    kept = [
        (str(root / name), label.strip())
        for name, label in zip(files, labels, strict=True)
        if label.strip().lower() not in BLANK_LABELS
    ]
    assert list(zip(table["path"], table["label"], strict=True)) == kept


ENTRY = st.tuples(
    st.lists(st.sampled_from(["sub", ".hidden", "é x", "日本"]), max_size=2),  # folders
    st.sampled_from(["a", ".a", "._a", "b c", "#1"]),  # file name
    st.sampled_from([".npy", ".NPY", ".txt", ""]),  # extension
)
CLASS = st.sampled_from(["sit", "stand", ".ipynb_checkpoints", ".git", "é x", "10", "2"])


@given(
    tree=st.lists(st.tuples(CLASS, ENTRY), max_size=8),
    empty=st.lists(CLASS, max_size=2),
)
def test_a_class_folder_tree_lists_exactly_its_visible_files(
    tmp_path_factory: pytest.TempPathFactory,
    tree: list[tuple[str, tuple[list[str], str, str]]],
    empty: list[str],
) -> None:
    root = tmp_path_factory.mktemp("tree")
    expected = set()
    for class_name, (folders, name, extension) in tree:
        path = root.joinpath(class_name, *folders, name + extension)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        visible = not any(part.startswith(".") for part in (class_name, *folders, path.name))
        if visible and extension.lower() == ".npy":
            expected.add((str(path), class_name))
    for class_name in empty:
        (root / class_name).mkdir(exist_ok=True)

    try:
        table = scan_folder(root, (".npy",)).table
    except ManifestError as error:
        assert not expected and "no files with extensions" in str(error)
        return
    assert set(zip(table["path"], table["label"], strict=True)) == expected
    assert len(table) == len(expected)
