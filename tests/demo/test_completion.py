"""Specification of the completion marker and atomic CSV writes (vidlearn/demo/completion.py)."""

from __future__ import annotations

from pathlib import Path

from vidlearn.demo.completion import (
    MARKER_NAME,
    clear_complete,
    demo_is_complete,
    mark_complete,
    write_csv,
)


def make_toy(out: Path, *, seed: int = 0, count: int = 3) -> Path:
    """A stand-in generator: only its signature matters to the marker."""
    return Path(out) / "manifest.csv"


def make_other(out: Path, *, seed: int = 0, count: int = 3) -> Path:
    """A second generator with the same arguments as `make_toy`."""
    return Path(out) / "manifest.csv"


def test_demo_is_complete_is_false_without_marker(tmp_path: Path) -> None:
    assert not demo_is_complete(tmp_path, make_toy, seed=0, count=3)


def test_demo_is_complete_fills_in_default_arguments(tmp_path: Path) -> None:
    mark_complete(tmp_path, make_toy, seed=0, count=3)
    assert demo_is_complete(tmp_path, make_toy)


def test_demo_is_complete_is_false_when_arguments_changed(tmp_path: Path) -> None:
    mark_complete(tmp_path, make_toy, seed=0, count=3)
    assert not demo_is_complete(tmp_path, make_toy, seed=0, count=4)


def test_demo_is_complete_is_false_for_another_generator(tmp_path: Path) -> None:
    mark_complete(tmp_path, make_toy)
    assert not demo_is_complete(tmp_path, make_other)


def test_demo_is_complete_is_false_for_a_corrupt_marker(tmp_path: Path) -> None:
    (tmp_path / MARKER_NAME).write_text('{"make": ')
    assert not demo_is_complete(tmp_path, make_toy)


def test_clear_complete_makes_a_finished_directory_incomplete(tmp_path: Path) -> None:
    mark_complete(tmp_path, make_toy)
    clear_complete(tmp_path)
    assert not demo_is_complete(tmp_path, make_toy)


def test_write_csv_leaves_only_the_finished_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "sub" / "rows.csv", ("id", "value"), [("a", 1), ("b", 2.5)])
    assert [path.name for path in (tmp_path / "sub").iterdir()] == ["rows.csv"]
    assert (tmp_path / "sub" / "rows.csv").read_text() == "id,value\na,1\nb,2.5\n"
