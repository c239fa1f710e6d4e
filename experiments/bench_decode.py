"""Full-decode speed of each vidlearn backend on one core, as a ratio to the ffmpeg command line.

Encodes four H.264 test videos with PyAV (320x240 and 1280x720, GOP 250 and 10), decodes every
frame to RGB24 with `ffmpeg -threads 1 ... -f rawvideo -pix_fmt rgb24 /dev/null` and with each
backend through `vidlearn.data.video.open_video(..., threads=1)`, and reports frames per second
(best of `--repeats`) and the ratio to ffmpeg. Target: >= 0.85 of ffmpeg.

    python experiments/bench_decode.py            # writes experiments/results/bench_decode.json
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from vidlearn.data.video import open_video

RESULTS = Path(__file__).resolve().parent / "results" / "bench_decode.json"
SIZES = {"320x240": (320, 240), "1280x720": (1280, 720)}
GOPS = (250, 10)
FPS = 25
CHUNK = 32  # frames per read() call: one clip-sized batch, as a dataset would ask


def encode(path: Path, width: int, height: int, gop: int, seconds: float) -> int:
    """Write a moving gradient with noise (so the encoder has real work) as H.264; frame count."""
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:height, 0:width]
    num_frames = round(seconds * FPS)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "preset": "veryfast", "crf": "23"}
        for t in range(num_frames):
            base = (rows + 3 * t) % 256 * 0.6 + (columns * 2 + t) % 256 * 0.4
            noise = rng.integers(0, 24, (height, width, 1))
            frame = np.clip(base[..., None] + noise + [0, 40, 80], 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return num_frames


def time_ffmpeg(path: Path) -> float:
    """Seconds for the ffmpeg CLI to decode every frame to RGB24 on one thread."""
    command = [
        "ffmpeg",
        "-v",
        "error",
        "-threads",
        "1",
        "-i",
        str(path),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-filter_threads",
        "1",
        "-y",
        "/dev/null",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def time_backend(path: Path, backend: str) -> float:
    """Seconds to open `path` and read every frame in CHUNK-frame batches with one thread."""
    start = time.perf_counter()
    reader = open_video(path, backend, threads=1)
    if backend == "pyav":  # PyAV re-seeks per read(); one read of all frames is its sequential path
        frames = reader.read(range(reader.num_frames))
        assert len(frames) == reader.num_frames
    else:
        for first in range(0, reader.num_frames, CHUNK):
            reader.read(range(first, min(first + CHUNK, reader.num_frames)))
    reader.close()
    return time.perf_counter() - start


def versions() -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "av": av.__version__,
        "libavcodec (PyAV)": ".".join(map(str, av.library_versions["libavcodec"])),
    }
    import decord

    found["decord"] = decord.__version__
    if importlib.util.find_spec("torchcodec"):
        import torchcodec

        found["torchcodec"] = torchcodec.__version__
    cli = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
    found["ffmpeg CLI"] = cli.stdout.split("\n")[0].split(" ")[2]
    return found


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each test video")
    parser.add_argument("--repeats", type=int, default=5, help="timings per cell; the best is kept")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is not on PATH; install it (Debian: apt-get install -y ffmpeg) and rerun")
    backends = ["decord", "pyav"] + (
        ["torchcodec"] if importlib.util.find_spec("torchcodec") else []
    )

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size, (width, height) in SIZES.items():
            for gop in GOPS:
                path = Path(folder) / f"h264_{size}_gop{gop}.mp4"
                num_frames = encode(path, width, height, gop, args.seconds)
                ffmpeg_s = min(time_ffmpeg(path) for _ in range(args.repeats))
                row = {
                    "video": f"H.264 {size} GOP {gop}",
                    "frames": num_frames,
                    "ffmpeg_fps": num_frames / ffmpeg_s,
                }
                for backend in backends:
                    seconds = min(time_backend(path, backend) for _ in range(args.repeats))
                    row[f"{backend}_fps"] = num_frames / seconds
                    row[f"{backend}_ratio"] = ffmpeg_s / seconds
                rows.append(row)
                print(
                    " | ".join(
                        f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}"
                        for key, value in row.items()
                    ),
                    flush=True,
                )

    meta = {
        "machine": f"{cpu_name()}, {platform.machine()}, 1 thread per decoder",
        "date": datetime.date.today().isoformat(),
        "versions": versions(),
        "command": "python experiments/bench_decode.py " + " ".join(sys.argv[1:]),
        "target_ratio": 0.85,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")

    header = ["video", "frames", "ffmpeg fps"] + [f"{b} fps (ratio)" for b in backends]
    lines = [
        f"Machine: {meta['machine']}. Date: {meta['date']}. Versions: "
        + ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
        + ".",
        f"Command: `{meta['command'].strip()}`. Full decode to RGB24, best of {args.repeats}; "
        f"target ratio >= 0.85 of ffmpeg.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [row["video"], str(row["frames"]), f"{row['ffmpeg_fps']:.0f}"]
        cells += [f"{row[f'{b}_fps']:.0f} ({row[f'{b}_ratio']:.2f})" for b in backends]
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(["", "```markdown", *lines, "```"]))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
