"""Fill a frame cache ahead of training: every video decoded once, in parallel processes.

`fill_videos(cache, paths, workers)` returns a `FillReport`: how many videos have an entry, how
many were decoded now, frames and bytes in their entries, wall time, and the files that could
not be decoded with the reason (a training run would substitute those).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from vidlearn.data.frame_cache import FillResult, FrameCache
from vidlearn.data.video import DecodeError


@dataclass
class FillReport:
    """Totals of one fill; `bad` maps each undecodable file to its reason."""

    videos: int = 0
    decoded: int = 0
    frames: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    bad: dict[str, str] = field(default_factory=dict)

    def add(self, result: FillResult) -> None:
        self.videos += 1
        self.decoded += int(result.written)
        self.frames += result.num_frames
        self.nbytes += result.nbytes


def fill_one(cache: FrameCache, path: str) -> FillResult | str:
    """The fill result of `path`, or the DecodeError's message when it cannot be decoded."""
    try:
        return cache.fill(path)
    except DecodeError as error:
        return str(error)


def fill_videos(
    cache: FrameCache,
    paths: Sequence[str],
    workers: int = 2,
    advance: Callable[[], None] = lambda: None,
) -> FillReport:
    """Fill `cache` with every path (duplicates once), `workers` processes at a time (0: here).

    `advance` is called once per finished video (a progress bar).
    """
    unique = list(dict.fromkeys(map(str, paths)))
    report = FillReport()
    start = time.perf_counter()

    def record(path: str, outcome: FillResult | str) -> None:
        if isinstance(outcome, str):
            report.bad[path] = outcome
        else:
            report.add(outcome)
        advance()

    if workers <= 0:
        for path in unique:
            record(path, fill_one(cache, path))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fill_one, cache, path): path for path in unique}
            for future in as_completed(futures):
                record(futures[future], future.result())
    report.seconds = time.perf_counter() - start
    return report
