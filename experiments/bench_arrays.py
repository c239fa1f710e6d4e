"""Benchmark: samples per CPU second of vidlearn's array loader against the original cine recipe
and np.load.

    python experiments/bench_arrays.py                  # 25x150x150 uint8 .npy clips, 1 process
    python experiments/bench_arrays.py --quick          # a few files, for the smoke test
    python experiments/bench_arrays.py --targets-only   # the target paths only (A/B of commits)

Every path runs in this one process (0 workers: one core each), side by side, on the same files;
the paths of the targets run in alternating rounds (one pass of each per round, best of
`--rounds`), so a change of the shared machine's load hits them alike. Rates are samples per CPU
second (`time.process_time`), which other jobs on the machine move far less than wall time; the
record keeps the load average before and after the rounds:

- `plain`: `np.load` of each file, nothing else (the floor any loader pays);
- `original`: a re-implementation of the cine recipe's Keras generator: `np.load` per sample,
  float64, per-frame max normalisation, `scipy.ndimage.rotate` (+-25 degrees) and `shift`
  (+-15 px horizontally) of every frame with the clip's draw, float64 batches of 16;
  `original_none`: the same generator without the rotation and shift;
- `vidlearn_augment` / `vidlearn_none`: the training loader of `VideoDataModule` (sampler,
  dataset, clip transform with `conf/augment/hms_cine.yaml` or no augmentation, per-frame max
  normalisation, normalisation, collate), batches of 16, float32 (normalised in the worker);
- `vidlearn_augment_uint8` / `vidlearn_none_uint8`: the same with `data.normalise_on_device`
  (what the hms_cine presets set): uint8 batches and each frame's peak (`peak`), normalised
  later on the accelerator; `vidlearn_none_uint8_normalised` adds that normalisation
  (`BatchNormalisation`) here on the CPU, for reference;
- `vidlearn_device_cpu`: the loader without augmentation, then `augment=hms_cine_device`'s
  warp (`ClipAffineOnDevice`) over each batch, here on the CPU (no accelerator): the cost of
  the on-device path when the device is the CPU, for reference, not a target;
- `arrays_float32_batches` / `arrays_uint8_batches`: the loader without augmentation nor max
  normalisation, normalising in the worker or leaving uint8 batches to be normalised on the
  device (`data.normalise_on_device`), for reference;
- `video_light` / `video_none`: the same loader on H.264 videos, 16x112x112 clips, with
  `augment=light` and `augment=none`.

Targets (issue 23): the recipe's path (uint8 batches) with augmentation >= 100 x original and
>= 450 samples/s per core; without augmentation, vidlearn_none >= 1.0 x original_none (both
max-normalise each frame) and vidlearn_none_uint8 >= 0.5 x plain; video_light >= 0.9 x
video_none (issue 17). Each path runs on one core: torch and OpenCV use 1 thread. Writes
experiments/results/bench_arrays.json and .md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from common import environment, markdown_table, write_result
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy import ndimage

from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler, UniformSegmentSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.transforms import BatchNormalisation
from vidlearn.demo.videos import write_mp4

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16


def write_arrays(folder: Path, count: int, frames: int, size: int) -> Path:
    """`count` cine-like (T, size, size) uint8 arrays (a beating bright disc) and a manifest."""
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:size, 0:size]
    rows_csv = ["path,label,split"]
    for index in range(count):
        radius = size * (0.15 + 0.05 * np.sin(np.linspace(0, 2 * np.pi, frames)))
        disc = (rows - size / 2) ** 2 + (columns - size / 2) ** 2 < radius[:, None, None] ** 2
        clip = (disc * 180 + rng.normal(40, 10, (frames, size, size))).clip(0, 255)
        np.save(folder / f"cine{index:04d}.npy", clip.astype(np.uint8))
        rows_csv.append(f"cine{index:04d}.npy,{rng.normal(60, 10):.1f},train")
    manifest = folder / "arrays.csv"
    manifest.write_text("\n".join(rows_csv) + "\n")
    return manifest


def write_videos(folder: Path, count: int, frames: int) -> Path:
    """`count` 160x120 H.264 videos of a moving disc over noise, and a manifest."""
    rng = np.random.default_rng(1)
    rows, columns = np.mgrid[0:120, 0:160]
    lines = ["path,label,split"]
    for index in range(count):
        video = rng.integers(0, 60, (frames, 120, 160, 3), dtype=np.uint8)
        for t in range(frames):
            video[t][(rows - 60) ** 2 + (columns - 20 - 3 * t) ** 2 < 300] = 230
        write_mp4(folder / f"video{index:03d}.mp4", video, fps=25)
        lines.append(f"video{index:03d}.mp4,{'a' if index % 2 else 'b'},train")
    manifest = folder / "videos.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def augment(name: str) -> list[Any]:
    return instantiate(OmegaConf.load(ROOT / "conf" / "augment" / f"{name}.yaml")).transforms


def original_batches(
    paths: list[Path], rng: np.random.Generator, augment: bool = True
) -> Iterable[np.ndarray]:
    """The recipe's generator: float64 clips, max-normalised and (if `augment`) warped frame by
    frame."""
    for start in range(0, len(paths), BATCH):
        batch = []
        for path in paths[start : start + BATCH]:
            clip = np.load(path).astype(np.float64)  # (T, H, W)
            angle, dx = rng.uniform(-25, 25), rng.uniform(-15, 15)
            frames = []
            for frame in clip:
                frame = frame / max(frame.max(), 1.0)
                if augment:
                    frame = ndimage.rotate(frame, angle, reshape=False)
                    frame = ndimage.shift(frame, (0, dx))
                frames.append(frame)
            batch.append(np.stack(frames)[..., None])
        yield np.stack(batch)  # (B, T, H, W, 1) float64


def normalised(batches: Iterable[dict], normalise: BatchNormalisation) -> Iterable[dict]:
    """Each uint8 batch normalised with its peaks, as the task does on the device."""
    for batch in batches:
        yield {**batch, "input": normalise(batch["input"], batch["peak"])}


def warped(batches: Iterable[dict], device_augment: Callable) -> Iterable[dict]:
    """Each batch with its input warped by `device_augment` (one draw per clip from its seed)."""
    for batch in batches:
        yield {**batch, "input": device_augment(batch["input"], batch["seed"])}


def plain_loads(paths: list[Path]) -> Iterable[np.ndarray]:
    for path in paths:
        yield np.load(path)


def loader(manifest: Path, frames: int, size: int, transforms: list[Any], **options: Any):
    """The training DataLoader of a VideoDataModule over `manifest`, 0 workers."""
    datamodule = VideoDataModule(
        label_kind=options.pop("label_kind", "regression"),
        manifest=str(manifest),
        frames=frames,
        size=size,
        augment=transforms,
        batch_size=BATCH,
        num_workers=0,
        val_fraction=0.0,
        test_fraction=0.0,
        **options,
    )
    datamodule.setup("fit")
    return datamodule.train_dataloader()


def one_pass(batches: Callable[[], Iterable[Any]], size_of: Callable[[Any], int]) -> float:
    """Samples per CPU second (`time.process_time`) of one pass over `batches()`: every path runs
    in this one process on one thread, and on a machine shared with other jobs CPU time moves
    far less than wall time with their load."""
    start, count = time.process_time(), 0
    for batch in batches():
        count += size_of(batch)
    return count / max(time.process_time() - start, 1e-9)


def samples_per_second(
    batches: Callable[[], Iterable[Any]], size_of: Callable[[Any], int]
) -> float:
    """Best of 3 passes over `batches()` (the first pass also warms the page cache), samples per
    CPU second."""
    return max(one_pass(batches, size_of) for _ in range(3))


def batch_size(batch: dict) -> int:
    return len(batch["input"])


Measured = tuple[Callable[[], Iterable[Any]], Callable[[Any], int]]


def alternating_samples_per_second(paths: dict[str, Measured], rounds: int = 3) -> dict[str, float]:
    """Best of `rounds` rounds, each one pass of every path in turn: on a shared machine whose
    load changes within minutes, a change hits every path of a round alike, so their ratios
    hold (measured one after another, the same code gave 31-60 x for the augmentation target)."""
    best = dict.fromkeys(paths, 0.0)
    for _ in range(rounds):
        for name, (batches, size_of) in paths.items():
            best[name] = max(best[name], one_pass(batches, size_of))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrays", type=int, default=320, help="number of .npy files")
    parser.add_argument("--original", type=int, default=16, help="files for the slow original")
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for the smoke test")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the targets")
    parser.add_argument(
        "--targets-only",
        action="store_true",
        help="only the paths of the targets (to compare two commits run after one another)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args()
    frames, size = 25, 150
    if args.quick:
        args.arrays, args.original, args.videos, frames, size = 16, 2, 4, 5, 32
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # one core per path: OpenCV would otherwise warp on every core
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        arrays = write_arrays(folder, args.arrays, frames, size)
        paths = sorted(folder.glob("cine*.npy"))
        array_options = dict(
            per_frame_max_norm=True,
            mean=[0.5],
            std=[0.25],
            train_clip_sampler=UniformSegmentSampler(frames, random_offset=False),
            eval_clip_sampler=UniformSegmentSampler(frames, random_offset=False),
        )
        # The paths of the targets, measured in alternating rounds.
        measured: dict[str, Measured] = {
            "plain": (lambda: plain_loads(paths), lambda _: 1),
            "original": (
                lambda: original_batches(paths[: args.original], np.random.default_rng(0)),
                len,
            ),
            "original_none": (
                lambda: original_batches(paths, np.random.default_rng(0), augment=False),
                len,
            ),
        }
        for name, transforms in (("vidlearn_augment", augment("hms_cine")), ("vidlearn_none", [])):
            for suffix, on_device in (("", False), ("_uint8", True)):
                batches = loader(
                    arrays, frames, size, transforms, normalise_on_device=on_device, **array_options
                )
                measured[name + suffix] = (partial(iter, batches), batch_size)
        load_before = os.getloadavg()
        rate = alternating_samples_per_second(measured, rounds=args.rounds)
        load_after = os.getloadavg()
        if not args.targets_only:
            rate |= reference_rates(folder, arrays, frames, size, array_options, args.videos)
    ratios = {
        name: rate[numerator] / rate[denominator]
        for name, (numerator, denominator) in RATIOS.items()
        if numerator in rate and denominator in rate
    }
    targets = {
        name: check(rate, ratios)
        for name, check in TARGETS.items()
        if not args.targets_only or "video" not in name
    }
    rows = [[name, f"{value:.1f}"] for name, value in rate.items()]
    rows += [[name, f"{value:.2f}"] for name, value in ratios.items()]
    rows += [[name, "MET" if met else "NOT MET"] for name, met in targets.items()]
    table = markdown_table(["measure (samples per CPU second)", "value"], rows)
    print(table)
    record = {
        "environment": environment(),
        "load_average": {"before": load_before, "after": load_after},
        "settings": {"frames": frames, "size": size, "batch": BATCH, **vars(args)},
        "samples_per_second": rate,
        "ratios": ratios,
        "targets_met": targets,
    }
    write_result("bench_arrays", record, table, args.out)


RATIOS = {
    "augment_uint8_vs_original": ("vidlearn_augment_uint8", "original"),
    "augment_float32_vs_original": ("vidlearn_augment", "original"),
    "none_vs_original_none": ("vidlearn_none", "original_none"),
    "none_uint8_vs_original_none": ("vidlearn_none_uint8", "original_none"),
    "none_uint8_vs_plain": ("vidlearn_none_uint8", "plain"),
    "none_vs_plain": ("vidlearn_none", "plain"),
    "video_light_vs_none": ("video_light", "video_none"),
    "uint8_batches_vs_plain": ("arrays_uint8_batches", "plain"),
}
TARGETS: dict[str, Callable[[dict, dict], bool]] = {
    "augment_uint8_vs_original >= 100": lambda _, r: r["augment_uint8_vs_original"] >= 100,
    "vidlearn_augment_uint8 >= 450 samples/s per core": lambda s, _: (
        s["vidlearn_augment_uint8"] >= 450
    ),
    "none_vs_original_none >= 1.0": lambda _, r: r["none_vs_original_none"] >= 1.0,
    "none_uint8_vs_plain >= 0.5": lambda _, r: r["none_uint8_vs_plain"] >= 0.5,
    "video_light_vs_none >= 0.9": lambda _, r: r["video_light_vs_none"] >= 0.9,
}


def reference_rates(
    folder: Path, arrays: Path, frames: int, size: int, array_options: dict, videos: int
) -> dict[str, float]:
    """The reference paths (not targets) and the video paths of issue 17."""
    rate = {}
    rate["vidlearn_none_uint8_normalised"] = samples_per_second(
        partial(
            normalised,
            loader(arrays, frames, size, [], normalise_on_device=True, **array_options),
            BatchNormalisation(array_options["mean"], array_options["std"]),
        ),
        batch_size,
    )
    # Without per-frame max norm, normalised in the worker (float32 batches) or left to the
    # device (uint8 batches): what `data.normalise_on_device` saves the loader.
    plain_options = {**array_options, "per_frame_max_norm": False}
    for name, on_device in (("arrays_float32_batches", False), ("arrays_uint8_batches", True)):
        batches = loader(arrays, frames, size, [], normalise_on_device=on_device, **plain_options)
        rate[name] = samples_per_second(partial(iter, batches), batch_size)
    device = instantiate(
        OmegaConf.load(ROOT / "conf" / "augment" / "hms_cine_device.yaml").device,
        mean=array_options["mean"],
        std=array_options["std"],
    )
    rate["vidlearn_device_cpu"] = samples_per_second(
        partial(warped, loader(arrays, frames, size, [], **array_options), device),
        batch_size,
    )
    manifest = write_videos(folder, videos, frames=40)
    video_options = dict(
        label_kind="multiclass",
        train_clip_sampler=RandomClipSampler(16),
        eval_clip_sampler=CenterClipSampler(16),
    )
    light, none = (
        loader(manifest, 16, 112, augment(name), **video_options) for name in ("light", "none")
    )
    rate |= alternating_samples_per_second(
        {
            "video_light": (partial(iter, light), batch_size),
            "video_none": (partial(iter, none), batch_size),
        },
        rounds=5,
    )
    return rate


if __name__ == "__main__":
    main()
