"""Time probing (vidlearn.data.probe.probe_rows) of many short videos: cold, then warm from the index.

Encodes `--files` short H.264 videos (`--frames` frames of `--size` x `--size`, 10 fps) with
PyAV, then probes every row as `setup` does with data.backend=auto and a random 8-frame clip
sampler: cold in-process (1 process), cold in `--workers` processes (a fresh probe index), and
warm (the same index again, as a second run or a second DDP rank would). No target is set by
the issue; the figures are recorded.

    python experiments/bench_probe.py                 # 2,000 videos, 2 workers
    python experiments/bench_probe.py --quick         # 40 videos, a smoke run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
from common import environment, markdown_table, write_result

from vidlearn.data.clip_sampling import RandomClipSampler
from vidlearn.data.probe import probe_rows
from vidlearn.data.probe_index import ProbeCache


def encode(path: Path, frames: int, size: int, seed: int) -> None:
    """A short H.264 video of noise over a grey level that changes per frame."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "8", "preset": "ultrafast"}
        for t in range(frames):
            array = np.clip(rng.integers(0, 32, (size, size, 3)) + 8 * t, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())


def make_table(folder: Path, files: int, frames: int, size: int) -> pd.DataFrame:
    """`files` videos in `folder` and the rows probe_rows reads (path, line, split)."""
    paths = []
    for i in range(files):
        path = folder / f"clip_{i:05d}.mp4"
        encode(path, frames, size, seed=i)
        paths.append(str(path))
    return pd.DataFrame({"path": paths, "line": range(2, files + 2), "split": "train"})


def time_probe(table: pd.DataFrame, index: Path, workers: int) -> tuple[float, int, int]:
    """(seconds, files opened now, unusable rows) of one probe of every row."""
    start = time.perf_counter()
    report = probe_rows(table, "auto", {"train": RandomClipSampler(8)}, ProbeCache(index), workers)
    return time.perf_counter() - start, report.probed, len(report.skipped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="40 videos: a smoke run")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args()
    files = 40 if args.quick else args.files
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        start = time.perf_counter()
        table = make_table(folder, files, args.frames, args.size)
        encode_s = time.perf_counter() - start
        runs = {
            "cold, 1 process": time_probe(table, folder / "alone.sqlite", 0),
            f"cold, {args.workers} processes": time_probe(
                table, folder / "probes.sqlite", args.workers
            ),
            f"warm, {args.workers} processes": time_probe(
                table, folder / "probes.sqlite", args.workers
            ),
        }
    rows = [
        [name, files, f"{seconds:.2f}", f"{1000 * seconds / files:.2f}", probed, unusable]
        for name, (seconds, probed, unusable) in runs.items()
    ]
    headers = ["probe", "videos", "seconds", "ms per video", "probed now", "unusable"]
    record = {
        "environment": environment(),
        "load_average": os.getloadavg(),
        "videos": {"files": files, "frames": args.frames, "size": args.size, "codec": "h264"},
        "encode_s": encode_s,
        "results": {
            name: dict(zip(["seconds", "probed", "unusable"], run, strict=True))
            for name, run in runs.items()
        },
    }
    write_result(
        "bench_probe_quick" if args.quick else "bench_probe",
        record,
        markdown_table(headers, rows),
        args.out,
    )


if __name__ == "__main__":
    main()
