"""Benchmark: the vidlearn train loader (uncached, cache-filling, cached) against bare decoding and
PyTorchVideo 0.1.5, in one run, on the same files.

    python experiments/bench_loader.py                       # 32 videos, workers 0 and 2, 3 rounds
    python experiments/bench_loader.py --rss-clips 10000     # resident memory over 10,000 clips
    python experiments/bench_loader.py --uncached-only       # bare decode vs. uncached loaders
                                                             # (results/bench_loader_uncached)

Videos: 32 generated 320x240 H.264 files of 150 frames at 25 fps with ONE keyframe each (a random
clip decodes from frame 0). Clips: 16 frames at a random start, resized to 112x112, normalised,
batch 8, decord, no augmentation. An epoch is one clip of every video (32 clips, each video
once, shuffled), read through a DataLoader whose workers persist across epochs.

- bare decode: open a decord reader, read one random clip, close; one process, measured in
  every round beside the loaders (the shared cores' load drifts).
- vidlearn uncached: `VideoDataModule.train_dataloader()`; "first" is the first epoch of a new
  loader (worker start included), "steady" the epochs after it. Its decoder threads are
  `data.decoder_threads: null` (the cores shared out among the workers); "uint8" is the same
  loader with `normalise_on_device`, whose batches stay uint8 (normalised by the task). With
  workers, the default loader's clips cross as uint8 too, normalised in the main process
  (`VideoDataModule.loader_dataset`).
- vidlearn cold: the first epoch of a new loader on an EMPTY `data.frame_cache` (a fresh folder
  each round): every clip decodes its video up to the clip's last frame, as uncached, and
  stores those frames resized (the entry's prefix).
- vidlearn cached: the steady epochs of a loader whose cache is full: the prefixes the cold
  epoch stored are completed first (`FrameCache.fill`, not timed).
- PyTorchVideo: `LabeledVideoDataset` with `make_clip_sampler("random", 16 / 25)`, its decord
  decoder (decode_audio=False, its default thread count), and a transform doing the same resize
  (bilinear) and normalisation in torch; skipped, and said so, when not installed.

PyTorchVideo's decord module sets decord's global bridge to torch when imported; vidlearn's
reader wants numpy arrays, so each side sets the bridge it needs before its loader starts (its
workers inherit it). Sides alternate within each round. Writes results/bench_loader.json/.md.

`--rss-clips N` instead runs the uncached loader (2 workers, one long epoch of N clips drawn with
replacement) on 160x120 copies of the videos and records resident memory (parent + workers)
every `--rss-every` clips, to tell allocator warm-up (growth that stops) from a leak (growth
that continues at a steady rate); results/bench_loader_rss.json/.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, markdown_table, write_result  # noqa: E402

from vidlearn.data.cache_fill import fill_videos  # noqa: E402
from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler  # noqa: E402
from vidlearn.data.datamodules import VideoDataModule, decoder_threads_for  # noqa: E402
from vidlearn.data.frame_cache import FrameCache  # noqa: E402
from vidlearn.data.samplers import BalancedSampler  # noqa: E402
from vidlearn.data.video import open_video  # noqa: E402

FPS = 25
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/PID/stat counts CPU time in these
MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]


def make_videos(folder: Path, count: int, frames: int, width: int, height: int) -> Path:
    """`count` H.264 videos with one keyframe each (moving disc on noise) and a train manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width]
    rows = ["path,label,split"]
    for index in range(count):
        path = folder / f"clip{index:03d}.mp4"
        if not path.exists():
            base = rng.integers(0, 255, 3)
            with av.open(str(path), "w") as container:
                stream = container.add_stream("libx264", rate=FPS)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                # one keyframe: GOP longer than the video, no scene-cut keyframes
                stream.options = {"g": str(frames + 1), "sc_threshold": "0", "preset": "veryfast"}
                for t in range(frames):
                    cx = width * (0.2 + 0.6 * t / frames)
                    cy = height / 2 + height / 6 * np.sin(t / 5 + index)
                    image = np.empty((height, width, 3), dtype=np.uint8)
                    image[:] = base
                    image[(xs - cx) ** 2 + (ys - cy) ** 2 < (height / 12) ** 2] = 255 - base
                    image = np.clip(image + rng.normal(0, 6, (height, width, 1)), 0, 255)
                    frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
                    container.mux(stream.encode(frame))
                container.mux(stream.encode())
        rows.append(f"{path.name},{'rare' if index % 5 == 0 else 'common'},train")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def keyframes(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(packet.is_keyframe for packet in container.demux(video=0) if packet.size)


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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the given processes (every thread) have used (Linux /proc)."""
    return sum(cpu_seconds_by_pid(pids).values())


def child_pids() -> list[int]:
    """PIDs of this process's children (DataLoader workers)."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def set_bridge(name: str) -> None:
    """decord's global output type: "native" for vidlearn's readers, "torch" for PyTorchVideo."""
    import decord

    decord.bridge.set_bridge(name)


def bare_decode(
    paths: list[str], clips: int, clip_length: int, threads: int = 1
) -> tuple[float, float]:
    """Clips/s and CPU seconds per clip of opening a reader and reading one random clip, here."""
    set_bridge("native")
    rng = np.random.default_rng(0)
    sampler = RandomClipSampler(clip_length)
    start, cpu_start = time.perf_counter(), time.process_time()
    for index in range(clips):
        reader = open_video(paths[index % len(paths)], backend="decord", threads=threads)
        reader.read(sampler(reader.num_frames, reader.fps, rng)[0])
        reader.close()
    return clips / (time.perf_counter() - start), (time.process_time() - cpu_start) / clips


# -- the two sides ---------------------------------------------------------------------------
def vidlearn_loader(
    manifest: Path,
    workers: int,
    args: argparse.Namespace,
    cache: Path | None = None,
    **options: Any,
) -> tuple[torch.utils.data.DataLoader, Callable[[int], None]]:
    """The VideoDataModule train loader and its epoch setter."""
    set_bridge("native")
    datamodule = VideoDataModule(
        label_kind="multiclass",
        manifest=str(manifest),
        frames=args.clip_length,
        size=args.size,
        mean=MEAN,
        std=STD,
        train_clip_sampler=RandomClipSampler(args.clip_length),
        eval_clip_sampler=CenterClipSampler(args.clip_length),
        batch_size=args.batch_size,
        num_workers=workers,
        persistent_workers=workers > 0,
        frame_cache=str(cache) if cache else None,
        **options,
    )
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    return loader, loader.sampler.set_epoch


class PTVTransform:
    """PyTorchVideo clip dict -> (T, C, size, size) normalised float, as vidlearn's input."""

    def __init__(self, clip_length: int, size: int) -> None:
        self.clip_length, self.size = clip_length, size
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(STD).view(1, 3, 1, 1) * 255

    def __call__(self, item: dict) -> dict:
        video = item["video"][:, : self.clip_length].permute(1, 0, 2, 3)  # (T, C, H, W) float
        video = torch.nn.functional.interpolate(
            video, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
        return {"input": (video - self.mean) / self.std, "target": item["label"]}


def ptv_loader(
    paths: list[str], workers: int, args: argparse.Namespace
) -> tuple[torch.utils.data.DataLoader, Callable[[int], None]]:
    """PyTorchVideo 0.1.5's LabeledVideoDataset over the same files, decord decoder."""
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

    set_bridge("torch")
    dataset = LabeledVideoDataset(
        [(path, {"label": index % 2}) for index, path in enumerate(paths)],
        make_clip_sampler("random", args.clip_length / FPS),
        transform=PTVTransform(args.clip_length, args.size),
        decode_audio=False,
        decoder="decord",
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, num_workers=workers, persistent_workers=workers > 0
    )
    return loader, lambda epoch: dataset._video_random_generator.manual_seed(epoch)


def cpu_seconds_by_pid(pids: list[int] | None = None) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each of `pids` (default: this process and its
    children, the loader's workers), by pid (Linux /proc); processes that ended are left out."""
    used = {}
    for pid in [os.getpid(), *child_pids()] if pids is None else pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        used[pid] = (
            int(fields[11]) + int(fields[12])
        ) / CLOCK_TICKS  # utime, stime: stat fields 14, 15
    return used


def epochs_clips_per_s(
    loader: torch.utils.data.DataLoader, set_epoch: Callable[[int], None], epochs: int
) -> dict[str, float]:
    """Clips/s of the first epoch (worker start included) and of the later epochs together; the
    later epochs' CPU seconds per clip, and "first_cpu": clips per CPU second of the first epoch
    (this process and its workers: what the clips cost whatever else shares the cores)."""
    timings, cpu_start = [], 0.0
    for epoch in range(epochs):
        if epoch == 1:  # persistent workers started in epoch 0
            cpu_start = cpu_seconds([os.getpid(), *child_pids()])
        set_epoch(epoch)
        start, clips, epoch_cpu = time.perf_counter(), 0, cpu_seconds_by_pid()
        for batch in loader:
            clips += batch["input"].shape[0]
        cpu = sum(used - epoch_cpu.get(pid, 0.0) for pid, used in cpu_seconds_by_pid().items())
        # at least one clock tick: /proc counts in ticks, and a tiny epoch may not fill one
        timings.append((clips, time.perf_counter() - start, max(cpu, 1 / CLOCK_TICKS)))
    later = timings[1:]
    result = {"first": timings[0][0] / timings[0][1], "first_cpu": timings[0][0] / timings[0][2]}
    if later:
        clips = sum(c for c, _, _ in later)
        result["steady"] = clips / sum(s for _, s, _ in later)
        result["steady_cpu_per_clip"] = (
            cpu_seconds([os.getpid(), *child_pids()]) - cpu_start
        ) / clips
    return result


def one_round(
    order: int, manifest: Path, paths: list[str], workers: int, args: argparse.Namespace, ptv: bool
) -> dict[str, float]:
    """One round for one worker count; the sides' order flips with `order`."""
    out: dict[str, float] = {}

    def vidlearn_side() -> None:
        measured = epochs_clips_per_s(*vidlearn_loader(manifest, workers, args), args.epochs)
        out["vidlearn_uncached_first"], out["vidlearn_uncached"] = (
            measured["first"],
            measured["steady"],
        )
        out["vidlearn_uncached_cpu_per_clip"] = measured["steady_cpu_per_clip"]
        uint8 = epochs_clips_per_s(
            *vidlearn_loader(manifest, workers, args, normalise_on_device=True), args.epochs
        )
        out["vidlearn_uncached_uint8"] = uint8["steady"]
        out["vidlearn_uncached_uint8_cpu_per_clip"] = uint8["steady_cpu_per_clip"]
        if decoder_threads_for(workers, None) > 1:  # what the extra decoder threads cost and give
            single = epochs_clips_per_s(
                *vidlearn_loader(manifest, workers, args, decoder_threads=1), args.epochs
            )
            out["vidlearn_uncached_one_thread"] = single["steady"]
            out["vidlearn_uncached_one_thread_cpu_per_clip"] = single["steady_cpu_per_clip"]
        out["vidlearn_uncached_first_cpu"] = measured["first_cpu"]
        if args.uncached_only:
            return
        folder = Path(tempfile.mkdtemp(prefix="frame_cache_", dir=args.videos))
        try:
            cold = epochs_clips_per_s(*vidlearn_loader(manifest, workers, args, folder), 1)
            out["vidlearn_cold"], out["vidlearn_cold_cpu"] = cold["first"], cold["first_cpu"]
            fill_videos(FrameCache(folder, args.size), dict.fromkeys(paths, "decord"), workers=0)
            cached = epochs_clips_per_s(
                *vidlearn_loader(manifest, workers, args, folder), args.cached_epochs
            )
            out["vidlearn_cached"] = cached["steady"]
        finally:
            shutil.rmtree(folder)

    def ptv_side() -> None:
        measured = epochs_clips_per_s(*ptv_loader(paths, workers, args), args.epochs)
        out["ptv_first"], out["ptv"] = measured["first"], measured["steady"]

    sides = [vidlearn_side, ptv_side] if ptv and not args.uncached_only else [vidlearn_side]
    for side in sides if order % 2 == 0 else sides[::-1]:
        side()
    return out


def ratios(run: dict[str, float], bare: float, workers: int) -> dict[str, float]:
    result = {
        "uncached_to_bare_per_process": run["vidlearn_uncached"] / (bare * max(workers, 1)),
        "uncached_uint8_to_bare_per_process": run["vidlearn_uncached_uint8"]
        / (bare * max(workers, 1)),
        # CPU per clip: the bare read's over the loader's (all its processes), load-independent
        "uncached_to_bare_cpu": run["bare_decode_cpu_per_clip"]
        / run["vidlearn_uncached_cpu_per_clip"],
        "uncached_uint8_to_bare_cpu": run["bare_decode_cpu_per_clip"]
        / run["vidlearn_uncached_uint8_cpu_per_clip"],
    }
    if "vidlearn_uncached_one_thread" in run:
        result["uncached_one_thread_to_bare"] = run["vidlearn_uncached_one_thread"] / bare
        result["uncached_one_thread_to_bare_cpu"] = (
            run["bare_decode_cpu_per_clip"] / run["vidlearn_uncached_one_thread_cpu_per_clip"]
        )
    if "vidlearn_cold" in run:
        result["cold_to_uncached_first_epoch"] = (
            run["vidlearn_cold"] / run["vidlearn_uncached_first"]
        )
        result["cold_to_uncached_first_epoch_cpu"] = (
            run["vidlearn_cold_cpu"] / run["vidlearn_uncached_first_cpu"]
        )
        result["cached_to_uncached"] = run["vidlearn_cached"] / run["vidlearn_uncached"]
    if "ptv" in run:
        for mode in ("uncached", "cached"):
            result[f"{mode}_to_ptv"] = run[f"vidlearn_{mode}"] / run["ptv"]
        result["cold_to_ptv_first_epoch"] = run["vidlearn_cold"] / run["ptv_first"]
    return result


def run_comparison(args: argparse.Namespace) -> None:
    manifest = make_videos(args.videos, 32, 150, 320, 240)
    paths = [str(args.videos / f"clip{i:03d}.mp4") for i in range(32)]
    assert keyframes(Path(paths[0])) == 1, "the bench's videos must have one keyframe each"
    try:
        import pytorchvideo  # noqa: F401

        ptv = True
    except ImportError:
        ptv = False
        print(
            "PyTorchVideo is not installed: its side is skipped (pip install "
            "pytorchvideo==0.1.5 --no-deps; pip install fvcore iopath parameterized)"
        )
    load_start = os.getloadavg()
    rounds: dict[int, list[dict[str, float]]] = {w: [] for w in args.workers}
    for index, workers in itertools.product(range(args.rounds), args.workers):
        # bare decoding in every round, beside the loaders: the shared cores' load drifts
        bare, bare_cpu = bare_decode(paths, args.bare_clips, args.clip_length)
        run = {
            "bare_decode": bare,
            "bare_decode_cpu_per_clip": bare_cpu,
            **one_round(index, manifest, paths, workers, args, ptv),
        }
        run.update(ratios(run, bare, workers))
        threads = decoder_threads_for(workers, None)
        if threads > 1:  # the loader's readers decode on several threads: so does this reference
            run["bare_decode_same_threads"] = bare_decode(
                paths, args.bare_clips, args.clip_length, threads
            )[0]
            run["uncached_to_bare_same_threads"] = (
                run["vidlearn_uncached"] / run["bare_decode_same_threads"]
            )
        rounds[workers].append(run)
        print(
            f"round {index}, workers={workers}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in run.items()),
            flush=True,
        )
    load_end = os.getloadavg()
    record = {
        "environment": environment(),
        "load_average_1_5_15": {"start": load_start, "end": load_end},
        "videos": "32 x 320x240 H.264, 150 frames, 25 fps, one keyframe each",
        "clip": f"{args.clip_length}x{args.size}x{args.size}, batch {args.batch_size}, decord, "
        "no augmentation",
        "epoch": "one clip per video (32 clips), workers persistent across epochs",
        "epochs": {"uncached": args.epochs, "cached": args.cached_epochs},
        "decoder_threads": {str(w): decoder_threads_for(w, None) for w in args.workers},
        "pytorchvideo": _version("pytorchvideo") if ptv else "not installed",
        "rounds": {str(w): runs for w, runs in rounds.items()},
        "median": {str(w): _median(runs) for w, runs in rounds.items()},
    }
    name = "bench_loader_uncached" if args.uncached_only else "bench_loader"
    write_result(name, record, comparison_markdown(record, args.workers))


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: median(run[key] for run in runs) for key in runs[0]}


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def comparison_markdown(record: dict[str, Any], workers: list[int]) -> str:
    keys = [
        ("bare decode, one process", "bare_decode"),
        ("bare decode, one process, the loader's decoder threads", "bare_decode_same_threads"),
        ("vidlearn uncached", "vidlearn_uncached"),
        ("vidlearn uncached, uint8 batches (normalise_on_device)", "vidlearn_uncached_uint8"),
        ("vidlearn cold (filling the cache)", "vidlearn_cold"),
        ("vidlearn uncached, first epoch", "vidlearn_uncached_first"),
        ("vidlearn cold, clips per CPU second", "vidlearn_cold_cpu"),
        ("vidlearn uncached first epoch, clips per CPU second", "vidlearn_uncached_first_cpu"),
        ("vidlearn cached", "vidlearn_cached"),
        ("PyTorchVideo", "ptv"),
        ("PyTorchVideo, first epoch", "ptv_first"),
        ("uncached / bare decode per process", "uncached_to_bare_per_process"),
        ("uncached uint8 / bare decode per process", "uncached_uint8_to_bare_per_process"),
        ("uncached / bare decode, same threads", "uncached_to_bare_same_threads"),
        ("bare decode CPU s per clip", "bare_decode_cpu_per_clip"),
        ("vidlearn uncached CPU s per clip (all processes)", "vidlearn_uncached_cpu_per_clip"),
        ("vidlearn uncached uint8 CPU s per clip", "vidlearn_uncached_uint8_cpu_per_clip"),
        ("uncached / bare decode in CPU per clip", "uncached_to_bare_cpu"),
        ("uncached uint8 / bare decode in CPU per clip", "uncached_uint8_to_bare_cpu"),
        ("vidlearn uncached, 1 decoder thread", "vidlearn_uncached_one_thread"),
        ("uncached 1 thread / bare decode", "uncached_one_thread_to_bare"),
        ("uncached 1 thread / bare decode in CPU per clip", "uncached_one_thread_to_bare_cpu"),
        ("cold / uncached first epoch", "cold_to_uncached_first_epoch"),
        ("cold / uncached first epoch, per CPU second", "cold_to_uncached_first_epoch_cpu"),
        ("uncached / PyTorchVideo", "uncached_to_ptv"),
        ("cached / PyTorchVideo", "cached_to_ptv"),
        ("cold / PyTorchVideo first epoch", "cold_to_ptv_first_epoch"),
    ]
    rows = []
    for label, key in keys:
        cells = []
        for w in workers:
            runs = record["rounds"][str(w)]
            if key in runs[0]:
                values = [run[key] for run in runs]
                digits = 3 if key.endswith("cpu_per_clip") else 2
                cells.append(
                    f"{median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"
                )
            else:
                cells.append("not run")
        rows.append([label, *cells])
    return markdown_table(
        ["clips/s or ratio: median (min-max over rounds)", *[f"{w} workers" for w in workers]], rows
    )


# -- memory --------------------------------------------------------------------------------
def run_rss(args: argparse.Namespace) -> None:
    folder = args.videos / "small"
    manifest = make_videos(folder, 32, 150, 160, 120)
    loader, _ = vidlearn_loader(
        manifest, 2, args, sampler=partial(BalancedSampler, num_samples=args.rss_clips)
    )
    samples, seen = [], 0
    batches: Iterator = iter(loader)
    start = time.perf_counter()
    next_mark = 0
    for batch in batches:
        seen += batch["input"].shape[0]
        if seen >= next_mark:
            pids = child_pids()
            samples.append(
                {
                    "clips": seen,
                    "seconds": round(time.perf_counter() - start, 1),
                    "parent_mb": round(rss_mb([os.getpid()]), 1),
                    "workers_mb": round(rss_mb(pids), 1),
                    "total_mb": round(rss_mb([os.getpid(), *pids]), 1),
                }
            )
            print(samples[-1], flush=True)
            next_mark += args.rss_every
    record = {
        "environment": environment(),
        "load_average_1_5_15_end": os.getloadavg(),
        "videos": "32 x 160x120 H.264, 150 frames, 25 fps, one keyframe each",
        "clip": f"{args.clip_length}x{args.size}x{args.size}, batch {args.batch_size}, 2 workers",
        "clips": seen,
        "samples": samples,
    }
    rows = [
        [s["clips"], s["seconds"], s["parent_mb"], s["workers_mb"], s["total_mb"]] for s in samples
    ]
    write_result(
        "bench_loader_rss",
        record,
        markdown_table(["clips", "s", "parent MiB", "workers MiB", "total MiB"], rows),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="uncached epochs per loader")
    parser.add_argument("--cached-epochs", type=int, default=20)
    parser.add_argument("--bare-clips", type=int, default=64, help="per round and worker count")
    parser.add_argument("--clip-length", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--uncached-only",
        action="store_true",
        help="only bare decode and the uncached loaders (no frame cache, no PyTorchVideo)",
    )
    parser.add_argument("--rss-clips", type=int, default=0, help="run the memory test instead")
    parser.add_argument("--rss-every", type=int, default=500)
    parser.add_argument("--videos", type=Path, default=Path("/tmp/vidlearn_bench_loader_gop"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.rss_clips:
        run_rss(args)
    else:
        run_comparison(args)


if __name__ == "__main__":
    main()
