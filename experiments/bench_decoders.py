"""The decoders side by side on the same files: decord, PyAV, torchcodec (exact and approximate
seek; its CUDA decoder too when a GPU is available), for the three ways vidlearn reads a video.

    python experiments/bench_decoders.py            # writes experiments/results/bench_decoders.json

Videos: H.264 with a moving gradient plus noise (`bench_decode.encode`), 320x240 and 1280x720,
GOP 12 (short) and 250 (long: one keyframe in the video), `--seconds` at 25 fps. Reads, each
one as a dataset item does it (open the file, read, close; one decoder thread per process):

- random clip: 16 consecutive frames at a random start (the train clip sampler);
- uniform segments: 8 frames spread evenly over the video (TSN-style segments);
- full decode: every frame, in 32-frame reads (PyAV: one read, its sequential path).

Each cell is items/s over the same positions for every backend; the backends take turns item by
item (their order rotating), so drifting load on shared cores falls on all of them alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decode import FPS, encode  # noqa: E402
from common import environment, markdown_table, write_result  # noqa: E402

from vidlearn.data.video import PyAVReader, TorchCodecReader, VideoReader, open_video  # noqa: E402

SIZES = {"320x240": (320, 240), "1280x720": (1280, 720)}
GOPS = (12, 250)
CLIP, SEGMENTS, CHUNK = 16, 8, 32


def openers() -> dict[str, Callable[[str], VideoReader]]:
    """Backend name -> open(path), one decoder thread each; CUDA torchcodec when available."""
    found: dict[str, Callable[[str], VideoReader]] = {
        name: lambda path, name=name: open_video(path, name, threads=1)
        for name in ("decord", "pyav", "torchcodec", "torchcodec_approximate")
    }
    if torch.cuda.is_available():
        found["torchcodec_cuda"] = lambda path: TorchCodecReader(path, 1, "exact", "cuda")
    return found


def read_clip(reader: VideoReader, start: int) -> None:
    reader.read(range(start, start + CLIP))


def read_segments(reader: VideoReader, _: int) -> None:
    reader.read(np.linspace(0, reader.num_frames - 1, SEGMENTS).round().astype(int))


def read_all(reader: VideoReader, _: int) -> None:
    if isinstance(reader, PyAVReader):  # one read is its sequential path
        reader.read(range(reader.num_frames))
        return
    for first in range(0, reader.num_frames, CHUNK):
        reader.read(range(first, min(first + CHUNK, reader.num_frames)))


READS = {"random clip": read_clip, "uniform segments": read_segments, "full decode": read_all}


def time_reads(
    path: str,
    read: Callable[[VideoReader, int], None],
    starts: list[int],
    backends: dict[str, Callable[[str], VideoReader]],
) -> dict[str, float]:
    """Items/s per backend: each start is one item (open, read, close), backends in turn."""
    seconds = dict.fromkeys(backends, 0.0)
    names = list(backends)
    for item, start in enumerate(starts):
        for name in names[item % len(names) :] + names[: item % len(names)]:
            began = time.perf_counter()
            reader = backends[name](path)
            read(reader, start)
            reader.close()
            seconds[name] += time.perf_counter() - began
    return {name: len(starts) / total for name, total in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each test video")
    parser.add_argument("--clips", type=int, default=6, help="random clips per video")
    parser.add_argument("--repeats", type=int, default=2, help="segment and full reads per video")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    backends = openers()
    rng = np.random.default_rng(0)
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            for gop in GOPS:
                path = str(Path(folder) / f"h264_{size}_gop{gop}.mp4")
                frames = encode(Path(path), *SIZES[size], gop, args.seconds)
                for name in backends:  # warm up: imports and first-open costs stay out
                    backends[name](path).close()
                for kind, read in READS.items():
                    if kind == "random clip":
                        starts = rng.integers(0, frames - CLIP + 1, args.clips).tolist()
                    else:
                        starts = [0] * args.repeats
                    speeds = time_reads(path, read, starts, backends)
                    fastest = max(speeds, key=speeds.get)
                    rows.append(
                        {"video": f"{size} GOP {gop}", "frames": frames, "read": kind}
                        | {f"{name}_per_s": speed for name, speed in speeds.items()}
                        | {"fastest": fastest}
                    )
                    print(rows[-1], flush=True)
    record = {
        "environment": environment(),
        "load_average_1_5_15": {"start": load_start, "end": os.getloadavg()},
        "videos": f"H.264 yuv420p, {args.seconds} s at {FPS} fps, moving gradient + noise",
        "reads": "random clip: 16 frames; uniform segments: 8 frames; full decode: every frame; "
        "each item opens, reads and closes; one decoder thread",
        "rows": rows,
    }
    header = ["video", "read", *(f"{name} items/s" for name in backends), "fastest"]
    table = [
        [row["video"], row["read"], *(f"{row[f'{n}_per_s']:.2f}" for n in backends), row["fastest"]]
        for row in rows
    ]
    write_result("bench_decoders", record, markdown_table(header, table))


if __name__ == "__main__":
    main()
