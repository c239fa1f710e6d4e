"""The probe index: what probing learnt about each file, in SQLite, keyed by (path, size, mtime, backend).

An entry holds either the file's VideoInfo or the reason the backend cannot read it, so a later
run, a second DDP rank or `vidlearn-stats` neither opens a good file again nor retries a broken
one; a file whose size or modification time changed is probed again. Safe to share between
processes: every call opens its own short-lived connection, and `exclusive()` lets one process
probe while the others wait and then read its answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import astuple
from pathlib import Path

from vidlearn.data import video
from vidlearn.data.video import DecodeError, VideoInfo
from vidlearn.errors import UserError

# What probing a file with one backend found: its facts, or why it cannot be read.
Outcome = VideoInfo | str

INDEX_VERSION = 1  # failures hold file faults only, never a backend that could not load
_KEY = "path = ? AND size = ? AND mtime_ns = ? AND backend = ?"


class ProbeCache:
    """VideoInfo (or the failure) per file and backend, in the SQLite database at `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._create_tables()
        except sqlite3.Error as error:  # a folder, a file that is not SQLite, no permission
            raise UserError(
                f"{self.path}: cannot use it as the probe index ({error}); point data.probe_index "
                "(vidlearn-stats: stats.probe_cache) at a .sqlite file in a writable folder."
            ) from None

    def _create_tables(self) -> None:
        """The index's tables, created when missing; failures kept from older versions dropped."""
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS probes (path TEXT, size INTEGER, mtime_ns INTEGER, "
                "backend TEXT, num_frames INTEGER, fps REAL, height INTEGER, width INTEGER, "
                "duration_s REAL, codec TEXT, PRIMARY KEY (path, size, mtime_ns, backend))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS failures (path TEXT, size INTEGER, mtime_ns INTEGER, "
                "backend TEXT, error TEXT, PRIMARY KEY (path, size, mtime_ns, backend))"
            )
            # Before version 1 a backend library that could not load was stored as every file's
            # failure; such entries would outlive installing it, so older failures are dropped.
            if db.execute("PRAGMA user_version").fetchone()[0] < INDEX_VERSION:
                db.execute("DELETE FROM failures")
                db.execute(f"PRAGMA user_version = {INDEX_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one transaction, committed and closed on exit."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=60)) as db, db:
            yield db

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the index's lock file: one process probes, the others wait, then hit the cache."""
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lookup(self, paths: Sequence[str], backend: str) -> dict[str, Outcome]:
        """The stored outcome of each of `paths` that has one for `backend` and is unchanged."""
        found: dict[str, Outcome] = {}
        with self._connect() as db:
            for path in paths:
                key = _key(path, backend)
                if key is None:
                    continue
                row = db.execute(
                    "SELECT num_frames, fps, height, width, duration_s, codec FROM probes "
                    f"WHERE {_KEY}",
                    key,
                ).fetchone()
                if row is not None:
                    found[path] = VideoInfo(*row)
                    continue
                row = db.execute(f"SELECT error FROM failures WHERE {_KEY}", key).fetchone()
                if row is not None:
                    found[path] = row[0]
        return found

    def store(self, outcomes: Mapping[str, Outcome], backend: str) -> None:
        """Remember each path's outcome for `backend`, in one transaction."""
        with self._connect() as db:
            for path, outcome in outcomes.items():
                key = _key(path, backend)
                if key is None:
                    continue  # gone since it was probed: nothing to key it by
                if isinstance(outcome, VideoInfo):
                    db.execute(
                        "INSERT OR REPLACE INTO probes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        key + astuple(outcome),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)", (*key, outcome)
                    )

    def probe(self, path: str | Path, backend: str = "decord") -> VideoInfo:
        """The VideoInfo of `path`, probing (and storing) it on a miss; DecodeError if unreadable."""
        path = str(path)
        if _key(path, backend) is None:
            raise DecodeError(f"{path}: file not found; fix the manifest row or restore the file")
        outcome = self.lookup([path], backend).get(path)
        if outcome is None:
            try:
                outcome = video.probe_video(path, backend)
            except DecodeError as error:
                outcome = str(error)
            self.store({path: outcome}, backend)
        if isinstance(outcome, str):
            raise DecodeError(outcome)
        return outcome


def _key(path: str, backend: str) -> tuple[str, int, int, str] | None:
    """(absolute path, size, mtime in ns, backend), or None when the file does not exist."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, backend)
