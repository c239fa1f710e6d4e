"""Probe every row's file once before training, and keep only the rows that can be trained on.

A video passes when it opens, its first and last frames decode and its split's clip sampler can
take a clip from it (a `short_video: skip` sampler refuses videos shorter than a clip); a frame
array when it has `(T, H, W[, V])` numeric data; an image when it decodes. With
`data.backend=auto` each video gets the first backend that passes (decord, else PyAV), decided
here once and used for every later read. Outcomes are remembered in a ProbeCache, so a second
run or a second DDP rank probes nothing again; files are probed in `workers` processes when
there are enough of them to pay for starting a pool.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import pandas as pd
from rich.progress import track

from vidlearn.data.clip_sampling import ClipSampler
from vidlearn.data.probe_index import Outcome, ProbeCache
from vidlearn.data.video import (
    AUTO_BACKENDS,
    DecodeError,
    VideoInfo,
    check_backend,
    probe_video,
    reason_of,
)

logger = logging.getLogger(__name__)

IMAGE_BACKEND = "image"  # the probe index's backend name for images, read with PIL
PARALLEL_MIN_FILES = 64  # below this, probing in-process beats starting a process pool
PROGRESS_MIN_FILES = 500  # show a progress bar when at least this many files need probing
LISTED_FALLBACKS = 20  # files read by a fallback backend named one by one in the log


@dataclass
class ProbeReport:
    """What probing found.

    `table`: the usable rows, with the `backend` each is read with; `skipped`: one row per
    unusable file (`path`, `line`, `split`, `reason`, `stage` = "probe"); `backends`: usable
    files per backend; `probed`: (file, backend) probes run now (the rest came from the index).
    """

    table: pd.DataFrame
    skipped: pd.DataFrame
    backends: dict[str, int] = field(default_factory=dict)
    probed: int = 0
    seconds: float = 0.0


def backends_to_try(backend: str) -> tuple[str, ...]:
    """The backends probed in order for `data.backend`: auto tries decord, then PyAV."""
    return AUTO_BACKENDS if backend == "auto" else (backend,)


def check_file(path: str, backend: str) -> Outcome:
    """Probe one file with one backend: its VideoInfo, or the DecodeError's message."""
    try:
        return probe_image(path) if backend == IMAGE_BACKEND else probe_video(path, backend)
    except DecodeError as error:
        return str(error)


def probe_image(path: str) -> VideoInfo:
    """An image's size as a one-frame VideoInfo, after decoding it as training will."""
    from vidlearn.data.datasets import read_image  # imports torch: only where images are probed

    image = read_image(path)  # (H, W, 3)
    return VideoInfo(1, 0.0, image.shape[0], image.shape[1], None, None)


def probe_files(
    paths: Sequence[str], backend: str, index: ProbeCache | None = None, workers: int = 0
) -> tuple[dict[str, tuple[str | None, Outcome]], int]:
    """Per path, (the backend that reads it, its VideoInfo) or (None, why none can); and how
    many (file, backend) probes ran now rather than coming from the index.

    Each backend of `backends_to_try(backend)` sees only the files the ones before it could not
    read. Outcomes found in `index` are reused; new ones are stored there. A backend that cannot
    load raises ConfigError first: nothing is probed, nothing stored.
    """
    if backend != IMAGE_BACKEND:
        check_backend(backend)
    failures: dict[str, list[str]] = {path: [] for path in paths}
    found: dict[str, tuple[str | None, Outcome]] = {}
    probed = 0
    with index.exclusive() if index is not None else contextlib.nullcontext():
        for candidate in backends_to_try(backend):
            pending = [path for path in paths if path not in found]
            known = index.lookup(pending, candidate) if index is not None else {}
            todo = [path for path in pending if path not in known]
            fresh = dict(zip(todo, _check_all(todo, candidate, workers), strict=True))
            probed += len(todo)
            if index is not None and fresh:
                index.store(fresh, candidate)
            for path in pending:
                outcome = known[path] if path in known else fresh[path]
                if isinstance(outcome, VideoInfo):
                    found[path] = (candidate, outcome)
                else:
                    failures[path].append(f"{candidate}: {reason_of(outcome, path)}")
    for path in paths:
        if path not in found:
            found[path] = (None, _joined(failures[path]))
    return found, probed


def _joined(reasons: list[str]) -> str:
    """One reason per backend ("decord: ...; pyav: ..."), or one without a backend when they agree."""
    texts = {reason.partition(": ")[2] for reason in reasons}
    return texts.pop() if len(texts) == 1 else "; ".join(reasons)


def _check_all(paths: list[str], backend: str, workers: int) -> list[Outcome]:
    """check_file over `paths`, in `workers` processes when there are enough files."""
    show = len(paths) >= PROGRESS_MIN_FILES
    description = f"probing {len(paths)} files with {backend}"
    if workers < 2 or len(paths) < PARALLEL_MIN_FILES:
        return list(
            track(
                map(check_file, paths, repeat(backend)),
                description,
                len(paths),
                transient=True,
                disable=not show,
            )
        )
    # fork, as the DataLoader's workers: starting is ~0.1 s against ~4 s for forkserver or spawn
    # (each re-imports numpy and pandas). Safe because each worker opens its own readers and
    # no reader is open here (a decord reader used across a fork hangs).
    context = multiprocessing.get_context("fork")
    chunk = max(1, min(32, len(paths) // (workers * 8)))
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        results = pool.map(check_file, paths, repeat(backend), chunksize=chunk)
        return list(track(results, description, len(paths), transient=True, disable=not show))


def probe_rows(
    table: pd.DataFrame,
    backend: str,
    clip_samplers: Mapping[str, ClipSampler] | None = None,
    index: ProbeCache | None = None,
    workers: int = 0,
) -> ProbeReport:
    """Probe the file of every row of `table` (columns `path`, `line`, `split`).

    A row whose split has a sampler in `clip_samplers` must also give that sampler a clip.
    """
    start = time.perf_counter()
    paths = table["path"].astype(str).tolist()
    outcomes, probed = probe_files(paths, backend, index, workers)
    backends, reasons = [], []
    for path, split in zip(paths, table["split"], strict=True):
        chosen, outcome = outcomes[path]
        sampler = (clip_samplers or {}).get(split)
        if chosen is not None and sampler is not None:
            reason = clip_problem(sampler, outcome)
            chosen, outcome = (None, reason) if reason else (chosen, outcome)
        backends.append(chosen)
        reasons.append(None if chosen else outcome)
    usable = np.array([chosen is not None for chosen in backends], dtype=bool)
    kept = table.loc[usable].assign(backend=[b for b in backends if b is not None])
    skipped = table.loc[~usable, ["path", "line", "split"]].assign(
        reason=[r for r in reasons if r is not None], stage="probe"
    )
    report = ProbeReport(
        table=kept.reset_index(drop=True),
        skipped=skipped.reset_index(drop=True),
        backends=dict(Counter(kept["backend"])),
        probed=probed,
        seconds=time.perf_counter() - start,
    )
    log_report(report, backend)
    return report


def clip_problem(sampler: ClipSampler, info: VideoInfo) -> str | None:
    """Why `sampler` cannot take a clip from a video with `info`, or None when it can.

    The sampler draws from a generator of its own, so probing does not shift any training draw.
    """
    try:
        sampler(info.num_frames, info.fps, np.random.default_rng(0))
    except DecodeError as error:
        return str(error)
    return None


def log_report(report: ProbeReport, backend: str) -> None:
    """One INFO line of counts, a line per file read by the fallback, a WARNING per unusable file."""
    counts = ", ".join(f"{name} {count}" for name, count in sorted(report.backends.items()))
    logger.info(
        "probe: %d usable (%s), %d unusable; %d probed now, the rest from the probe index (%.1f s)",
        len(report.table),
        counts or "none",
        len(report.skipped),
        report.probed,
        report.seconds,
    )
    fallbacks = _fallback_paths(report.table, backend)
    for path in fallbacks[:LISTED_FALLBACKS]:
        logger.info("probe: %s is read with %s (decord cannot read it)", path, AUTO_BACKENDS[1])
    if len(fallbacks) > LISTED_FALLBACKS:
        logger.info(
            "probe: and %d more files read with %s",
            len(fallbacks) - LISTED_FALLBACKS,
            AUTO_BACKENDS[1],
        )
    for row in report.skipped.itertuples():
        logger.warning("probe: skipping %s (manifest line %s): %s", row.path, row.line, row.reason)


def _fallback_paths(table: pd.DataFrame, backend: str) -> list[str]:
    if backend != "auto":
        return []
    return table.loc[table["backend"] == AUTO_BACKENDS[1], "path"].astype(str).tolist()
