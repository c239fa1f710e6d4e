"""Fill a frame cache ahead of training: every video decoded once, in parallel processes.

`fill_videos(cache, files, workers)` decodes each file with the backend the row stage's probe
chose for it (`files` maps path -> backend, so a video decord opens but cannot read is cached
with PyAV, as training reads it) and returns a `FillReport`: how many videos have an entry,
how many were decoded now, frames and bytes in their entries, videos per backend (arrays,
memory-mapped and never cached, as "array"), wall time, and the files that could not be
decoded with the reason (a training run would skip those).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from vidlearn.data.frame_cache import FillResult, FrameCache
from vidlearn.data.video import ARRAY_EXTENSIONS, DecodeError


@dataclass
class FillReport:
    """Totals of one fill; `bad` maps each undecodable file to its reason."""

    videos: int = 0
    decoded: int = 0
    frames: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    backends: dict[str, int] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)

    def add(self, result: FillResult, backend: str) -> None:
        self.videos += 1
        self.decoded += int(result.written)
        self.frames += result.num_frames
        self.nbytes += result.nbytes
        self.backends[backend] = self.backends.get(backend, 0) + 1


def fill_one(cache: FrameCache, path: str, backend: str) -> FillResult | str:
    """Make sure `path` has an entry, decoding it with `backend` on a miss; the DecodeError's
    message when it cannot be decoded."""
    try:
        return cache.fill(path, backend)
    except DecodeError as error:
        return str(error)


def fill_videos(
    cache: FrameCache,
    files: Mapping[str, str],
    workers: int = 2,
    advance: Callable[[], None] = lambda: None,
) -> FillReport:
    """Fill `cache` with every file of `files` (path -> backend), `workers` processes at a time
    (0: here). `advance` is called once per finished video (a progress bar)."""
    report = FillReport()
    start = time.perf_counter()

    def record(path: str, outcome: FillResult | str) -> None:
        if isinstance(outcome, str):
            report.bad[path] = outcome
        else:  # an array is memory-mapped whatever backend the probe named for its row
            report.add(outcome, "array" if path.lower().endswith(ARRAY_EXTENSIONS) else files[path])
        advance()

    if workers <= 0:
        for path, backend in files.items():
            record(path, fill_one(cache, path, backend))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(fill_one, cache, path, backend): path for path, backend in files.items()
            }
            for future in as_completed(futures):
                record(futures[future], future.result())
    report.seconds = time.perf_counter() - start
    return report
