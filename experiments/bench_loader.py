"""Benchmark: clips/s of the VideoDataModule train loader against a bare decode loop.

    python experiments/bench_loader.py                 # 320x240 H.264, 16-frame clips at 112x112
    python experiments/bench_loader.py --clips 2000 --workers 0 1 2

The bare loop opens each video with decord and reads one random 16-frame clip, nothing else.
The loader adds what training really does: manifest rows, the balanced sampler, clip sampling,
light augmentation (one draw per clip), resizing, normalisation, collation and, with workers,
the transfer between processes. Both read the same videos in the same process count, so their
ratio is the loader's overhead. Resident memory (parent + workers) is read at the start and after
all clips. Writes experiments/results/bench_loader.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.samplers import BalancedSampler
from vidlearn.data.video import open_video
from vidlearn.demo.videos import write_mp4

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


def make_videos(folder: Path, count: int, frames: int, width: int, height: int) -> Path:
    """Write `count` H.264 videos with moving shapes and a manifest with two imbalanced classes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["path,label,split"]
    ys, xs = np.mgrid[0:height, 0:width]
    for index in range(count):
        path = folder / f"clip{index:03d}.mp4"
        if not path.exists():
            base = rng.integers(0, 255, 3)
            video = np.empty((frames, height, width, 3), dtype=np.uint8)
            for t in range(frames):
                cx, cy = (width * (0.2 + 0.6 * t / frames), height / 2 + 40 * np.sin(t / 5 + index))
                disc = (xs - cx) ** 2 + (ys - cy) ** 2 < 400
                video[t] = base
                video[t][disc] = 255 - base
                video[t] = np.clip(video[t] + rng.normal(0, 6, (height, width, 1)), 0, 255)
            write_mp4(path, video, fps=25)
        rows.append(f"{path.name},{'rare' if index % 5 == 0 else 'common'},train")
    (folder / "val.mp4").write_bytes((folder / "clip000.mp4").read_bytes())
    rows.append("val.mp4,common,val")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the given processes in MiB (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def child_pids() -> list[int]:
    """PIDs of this process's children (DataLoader workers)."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def bare_decode(paths: list[str], clips: int, clip_length: int) -> float:
    """Clips/s of opening a reader and reading one random clip, in this process."""
    random.seed(0)
    sampler = RandomClipSampler(clip_length)
    start = time.perf_counter()
    for index in range(clips):
        reader = open_video(paths[index % len(paths)], backend="decord")
        reader.read(sampler(reader.num_frames, reader.fps)[0])
        del reader
    return clips / (time.perf_counter() - start)


def loader_run(
    manifest: Path, workers: int, clips: int, clip_length: int, size: int, batch_size: int
) -> dict[str, float]:
    """Clips/s and memory of the full train loader with `workers` worker processes."""
    augment = instantiate(OmegaConf.load(ROOT / "conf/augment/light.yaml")).transforms
    datamodule = VideoDataModule(
        label_kind="multiclass",
        manifest=str(manifest),
        frames=clip_length,
        size=size,
        train_clip_sampler=RandomClipSampler(clip_length),
        eval_clip_sampler=CenterClipSampler(clip_length),
        augment=list(augment),
        sampler=partial(BalancedSampler, num_samples=clips + 4 * batch_size),
        batch_size=batch_size,
        num_workers=workers,
        persistent_workers=False,
    )
    datamodule.setup("fit")
    loader = iter(datamodule.train_dataloader())
    next(loader)  # warm-up: workers started, first batches in flight
    rss_start = rss_mb([os.getpid(), *child_pids()])
    seen = 0
    start = time.perf_counter()
    while seen < clips:
        batch = next(loader)
        seen += batch["input"].shape[0]
    elapsed = time.perf_counter() - start
    rss_end = rss_mb([os.getpid(), *child_pids()])
    del loader
    return {
        "clips_per_s": seen / elapsed,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_growth": rss_end / rss_start - 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--clip-length", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--videos", type=Path, default=Path("/tmp/vidlearn_bench_loader"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    manifest = make_videos(args.videos, count=40, frames=96, width=320, height=240)
    paths = [str(args.videos / f"clip{i:03d}.mp4") for i in range(40)]
    bare = bare_decode(paths, min(args.clips, 500), args.clip_length)
    print(f"bare decode (1 process): {bare:.1f} clips/s")
    runs = {}
    for workers in args.workers:
        result = loader_run(
            manifest, workers, args.clips, args.clip_length, args.size, args.batch_size
        )
        # The loader's fair baseline is bare decoding in as many processes as it decodes in.
        result["ratio_to_bare"] = result["clips_per_s"] / (bare * max(workers, 1))
        runs[workers] = result
        print(
            f"workers={workers}: {result['clips_per_s']:.1f} clips/s, "
            f"{result['ratio_to_bare']:.2f}x bare decode per process, RSS {result['rss_start_mb']:.0f} -> "
            f"{result['rss_end_mb']:.0f} MiB ({100 * result['rss_growth']:+.1f}%)"
        )
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "video": "320x240 H.264, 96 frames, 25 fps",
        "clip": f"{args.clip_length}x{args.size}x{args.size}",
        "clips": args.clips,
        "bare_decode_clips_per_s": bare,
        "loader": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_loader.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
