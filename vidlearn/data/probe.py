"""Probe every row's file once before training, and keep only the rows that can be trained on.

A video passes when it opens, its first and last frames decode and its split's clip sampler can
take a clip from it (a `short_video: skip` sampler refuses videos shorter than a clip); a frame
array when it has `(T, H, W[, V])` numeric data; an image when it decodes. With
`data.backend=auto` each video gets the first backend that passes (torchcodec when installed,
then decord, then PyAV: `vidlearn.data.video.auto_backends`), decided here once and used for
every later read. Outcomes are remembered in a ProbeCache, so a second
run or a second DDP rank probes nothing again. Each file is probed in a child process under a
deadline (`data.probe_timeout`): a file that hangs its decoder, or crashes it, is skipped with the
reason (and not remembered: the next run tries it again) instead of stopping setup for ever.
Files are probed in `workers` processes when there are enough of them to pay for the start.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat

import numpy as np
import pandas as pd
from rich.progress import track

from vidlearn.data.clip_sampling import ClipSampler
from vidlearn.data.deadline_pool import Unfinished, map_with_deadline
from vidlearn.data.probe_index import Outcome, ProbeCache
from vidlearn.data.video import (
    DecodeError,
    VideoInfo,
    auto_backends,
    check_backend,
    probe_video,
    reason_of,
)

logger = logging.getLogger(__name__)

IMAGE_BACKEND = "image"  # the probe index's backend name for images, read with PIL
PARALLEL_MIN_FILES = 64  # below this, one process probes: more would cost more to start
DEFAULT_TIMEOUT = 60.0  # seconds per file and backend (data.probe_timeout)
PROGRESS_MIN_FILES = 500  # show a progress bar when at least this many files need probing
LISTED_FALLBACKS = 20  # files read by a fallback backend named one by one in the log


@dataclass
class ProbeReport:
    """What probing found.

    `table`: the usable rows, with the `backend` each is read with; `skipped`: one row per
    unusable file (`path`, `label` when the table has one, `line`, `split`, `reason`,
    `stage` = "probe"); `backends`: usable files per backend; `probed`: (file, backend) probes
    run now (the rest came from the index).
    """

    table: pd.DataFrame
    skipped: pd.DataFrame
    backends: dict[str, int] = field(default_factory=dict)
    probed: int = 0
    seconds: float = 0.0


def backends_to_try(backend: str) -> tuple[str, ...]:
    """The backends probed in order for `data.backend`: auto tries `auto_backends()`."""
    return auto_backends() if backend == "auto" else (backend,)


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
    paths: Sequence[str],
    backend: str,
    index: ProbeCache | None = None,
    workers: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[dict[str, tuple[str | None, Outcome]], int]:
    """Per path, (the backend that reads it, its VideoInfo) or (None, why none can); and how
    many (file, backend) probes ran now rather than coming from the index.

    Each backend of `backends_to_try(backend)` sees only the files the ones before it could not
    read. Outcomes found in `index` are reused; new ones are stored there, except a probe that
    ran past `timeout` seconds or crashed (the next run tries again). A backend that cannot
    load raises ConfigError first: nothing is probed, nothing stored.
    """
    if backend != IMAGE_BACKEND:
        check_backend(backend)
    failures: dict[str, list[tuple[str, str]]] = {path: [] for path in paths}
    found: dict[str, tuple[str | None, Outcome]] = {}
    probed = 0
    with index.exclusive() if index is not None else contextlib.nullcontext():
        for candidate in backends_to_try(backend):
            pending = [path for path in paths if path not in found]
            known = index.lookup(pending, candidate) if index is not None else {}
            todo = [path for path in pending if path not in known]
            fresh = dict(zip(todo, _check_all(todo, candidate, workers, timeout), strict=True))
            probed += len(todo)
            settled = {p: out for p, out in fresh.items() if not isinstance(out, Unfinished)}
            if index is not None and settled:
                index.store(settled, candidate)
            for path in pending:
                outcome = known[path] if path in known else fresh[path]
                if isinstance(outcome, VideoInfo):
                    found[path] = (candidate, outcome)
                elif isinstance(outcome, Unfinished):
                    failures[path].append((candidate, _unfinished_reason(outcome)))
                else:
                    failures[path].append((candidate, reason_of(outcome, path)))
    for path in paths:
        if path not in found:
            found[path] = (None, _joined(failures[path]))
    return found, probed


def _unfinished_reason(outcome: Unfinished) -> str:
    advice = " (data.probe_timeout; raise it if the file is only slow)" if outcome.timed_out else ""
    return (
        f"decoding {outcome.reason}{advice}; the file is probably corrupt: re-encode or remove it"
    )


def _joined(reasons: list[tuple[str, str]]) -> str:
    """One reason per backend ("decord: ...; pyav: ..."), or one without a backend when they agree."""
    texts = {reason for _, reason in reasons}
    return texts.pop() if len(texts) == 1 else "; ".join(f"{b}: {r}" for b, r in reasons)


def _check_all(
    paths: list[str], backend: str, workers: int, timeout: float | None
) -> list[Outcome | Unfinished]:
    """check_file over `paths`: in child processes (`workers` of them when there are enough
    files, else one) under a per-file deadline; in this process when there is no deadline and
    one process would do (nothing to kill a hung decoder by)."""
    show = len(paths) >= PROGRESS_MIN_FILES
    description = f"probing {len(paths)} files with {backend}"
    processes = workers if len(paths) >= PARALLEL_MIN_FILES else 1
    if timeout is None and processes < 2:
        outcomes = map(check_file, paths, repeat(backend))
        return list(track(outcomes, description, len(paths), transient=True, disable=not show))
    results: list[Outcome | Unfinished] = [""] * len(paths)
    finished = map_with_deadline(partial(check_file, backend=backend), paths, processes, timeout)
    for position, outcome in track(
        finished, description, len(paths), transient=True, disable=not show
    ):
        results[position] = outcome
    return results


def probe_rows(
    table: pd.DataFrame,
    backend: str,
    clip_samplers: Mapping[str, ClipSampler] | None = None,
    index: ProbeCache | None = None,
    workers: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> ProbeReport:
    """Probe the file of every row of `table` (columns `path`, `line`, `split`).

    A row whose split has a sampler in `clip_samplers` must also give that sampler a clip.
    `timeout`: seconds a file may take per backend (None: no deadline) before it is skipped.
    """
    start = time.perf_counter()
    paths = table["path"].astype(str).tolist()
    outcomes, probed = probe_files(paths, backend, index, workers, timeout)
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
    named = [c for c in ("path", "label", "line", "split") if c in table.columns]
    skipped = table.loc[~usable, named].assign(
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
    fallbacks = _fallbacks(report.table, backend)
    first = backends_to_try(backend)[0]
    for path, chosen in fallbacks[:LISTED_FALLBACKS]:
        logger.info("probe: %s is read with %s (%s cannot read it)", path, chosen, first)
    if len(fallbacks) > LISTED_FALLBACKS:
        logger.info(
            "probe: and %d more files read by a backend after %s",
            len(fallbacks) - LISTED_FALLBACKS,
            first,
        )
    for row in report.skipped.itertuples():
        logger.warning("probe: skipping %s (manifest line %s): %s", row.path, row.line, row.reason)


def _fallbacks(table: pd.DataFrame, backend: str) -> list[tuple[str, str]]:
    """(path, backend) of the files auto reads with a backend after its first choice."""
    if backend != "auto":
        return []
    later = table.loc[table["backend"] != backends_to_try(backend)[0]]
    return list(zip(later["path"].astype(str), later["backend"], strict=True))
