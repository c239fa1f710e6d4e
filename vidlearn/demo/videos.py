"""Demo videos whose class is the ORDER of frames: a dot circling one way, the other, or neither.

Every video visits the circle positions `start_angle + k * speed` for k in 0..frames-1, once
each. "clockwise" shows them in increasing k, "anticlockwise" in decreasing k, "erratic" in a
random permutation. The three classes therefore have identically distributed frame *sets*: a
model that ignores frame order is at chance, a temporal model can separate them. Backgrounds,
noise and distractor blobs vary per video; `speed` is a regression target and `event` a binary
one (a white ring around the dot, visible in every frame).
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import av
import numpy as np

from vidlearn.demo.completion import clear_complete, mark_complete, write_csv
from vidlearn.demo.drawing import (
    disc_coverage,
    gradient_background,
    hsv_colour,
    paint,
    shuffled_counts,
    square_coverage,
    to_uint8,
)

logger = logging.getLogger(__name__)

CLASSES = ("clockwise", "anticlockwise", "erratic")
CLASS_PROPORTIONS = (0.50, 0.32, 0.18)  # deliberately imbalanced
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
EVENT_PROPORTION = 0.10
SPEED_RANGE = (12.0, 30.0)  # degrees per frame
GROUP_SIZE_RANGE = (2, 5)  # videos per subject, inclusive
# crf 18 keeps a 3 px dot crisp at 64x64; preset veryfast measured ~9 ms per 24-frame clip.
# mbtree=0: with macroblock-tree rate control, libx264 (core 165) encoded identical short clips to
# different bytes depending on heap contents (8-31 of 200 re-encodes); without it, 0 of 400.
ENCODER_OPTIONS = {"crf": "18", "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}


@dataclass(frozen=True)
class VideoRow:
    """One manifest row; field order is the CSV's column order."""

    path: str
    label: str
    split: str
    group: str
    speed: float
    event: int


def frame_order(label: str, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """The circle position index k shown in each frame, `(T,) int64`, for a class `label`.

    "erratic" is a random permutation that is neither increasing nor decreasing, so it never
    coincides with the other two classes.
    """
    positions = np.arange(num_frames)
    if label == "clockwise":
        return positions
    if label == "anticlockwise":
        return positions[::-1].copy()
    if label == "erratic":
        while True:
            order = rng.permutation(num_frames)
            steps = np.diff(order)
            if not (np.all(steps > 0) or np.all(steps < 0)):
                return order
    raise ValueError(f"label {label!r} is not one of {CLASSES}")


def dot_positions(
    order: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    start_angle: float,
    speed: float,
) -> np.ndarray:
    """Dot centres `(T, 2)` as (y, x) pixels for frames showing circle positions `order`.

    Angles are in degrees; with y pointing down, increasing angle is clockwise on screen.
    """
    angles = np.deg2rad(start_angle + order * speed)
    return np.stack(
        [centre[0] + radius * np.sin(angles), centre[1] + radius * np.cos(angles)], axis=1
    )


def _render_frames(
    rng: np.random.Generator, positions: np.ndarray, size: int, event: bool
) -> np.ndarray:
    """Draw the scene around a dot at `positions (T, 2)`; returns `(T, size, size, 3) uint8`."""
    num_frames = len(positions)
    background = gradient_background(rng, size, size)
    dot_hue = rng.uniform(0.0, 1.0)
    dot_colour = hsv_colour(dot_hue, rng.uniform(0.7, 1.0), rng.uniform(0.85, 1.0))
    dot_radius = size * rng.uniform(0.045, 0.075)
    distractors = []
    for _ in range(rng.integers(0, 3)):
        # Another hue (at least a quarter turn away), another shape or size, static or drifting.
        colour = hsv_colour(dot_hue + rng.uniform(0.25, 0.75), rng.uniform(0.5, 1.0), 0.9)
        shape = disc_coverage if rng.uniform() < 0.5 else square_coverage
        extent = size * rng.uniform(0.03, 0.08)
        start = rng.uniform(0.1 * size, 0.9 * size, 2)
        drift = rng.uniform(-0.3, 0.3, 2) if rng.uniform() < 0.5 else np.zeros(2)
        distractors.append((colour, shape, extent, start, drift))
    noise_sigma = rng.uniform(2.0, 6.0)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t, (dot_y, dot_x) in enumerate(positions):
        frame = background
        for colour, shape, extent, start, drift in distractors:
            y, x = start + t * drift
            frame = paint(frame, shape(size, size, y, x, extent), colour)
        if event:
            ring = disc_coverage(size, size, dot_y, dot_x, dot_radius + 1.5)
            frame = paint(frame, ring, np.full(3, 255.0, dtype=np.float32))
        frame = paint(frame, disc_coverage(size, size, dot_y, dot_x, dot_radius), dot_colour)
        noise = rng.standard_normal((size, size, 3), dtype=np.float32) * noise_sigma
        frames[t] = to_uint8(frame + noise)
    return frames


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """Encode `frames (T, H, W, 3) uint8` RGB as H.264 (libx264, yuv420p) into an .mp4 file."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = ENCODER_OPTIONS
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _assign_splits(rng: np.random.Generator, labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Deal whole groups, in random order, to the split whose label counts lag most behind target.

    Returns the split index per video; groups never straddle splits and each split's label mix
    stays close to the whole set's.
    """
    label_codes = np.asarray([CLASSES.index(label) for label in labels])
    group_names, group_codes = np.unique(groups, return_inverse=True)
    counts = np.zeros((len(group_names), len(CLASSES)))  # videos per (group, label)
    np.add.at(counts, (group_codes, label_codes), 1)
    targets = np.asarray(SPLIT_FRACTIONS)[:, None] * counts.sum(axis=0)  # (splits, labels)
    filled = np.zeros_like(targets)
    split_of_group = np.empty(len(group_names), dtype=np.int64)
    for group in rng.permutation(len(group_names)):
        split = int(np.argmax(((targets - filled) * counts[group]).sum(axis=1)))
        split_of_group[group] = split
        filled[split] += counts[group]
    return split_of_group[group_codes]


def plan_videos(rng: np.random.Generator, num_videos: int) -> list[VideoRow]:
    """Draw every manifest column: class, subject group, split, speed and event per video."""
    labels = shuffled_counts(rng, num_videos, CLASSES, CLASS_PROPORTIONS)
    events = shuffled_counts(rng, num_videos, (1, 0), (EVENT_PROPORTION, 1 - EVENT_PROPORTION))
    sizes = rng.integers(GROUP_SIZE_RANGE[0], GROUP_SIZE_RANGE[1] + 1, num_videos)
    # Labels are already shuffled, so consecutive runs of videos make mixed-class subjects.
    group_codes = np.repeat(np.arange(num_videos), sizes)[:num_videos]
    groups = np.asarray([f"subject_{code:04d}" for code in group_codes])
    splits = _assign_splits(rng, labels, groups)
    speeds = np.round(rng.uniform(*SPEED_RANGE, num_videos), 1)
    return [
        VideoRow(
            path=f"videos/{labels[i]}_{i:05d}.mp4",
            label=str(labels[i]),
            split=SPLITS[splits[i]],
            group=str(groups[i]),
            speed=float(speeds[i]),
            event=int(events[i]),
        )
        for i in range(num_videos)
    ]


def make_videos(
    out: Path,
    *,
    seed: int = 0,
    num_videos: int = 600,
    frames: int = 24,
    size: int = 64,
    fps: int = 12,
) -> Path:
    """Write `num_videos` clips under `out/videos/` and `out/manifest.csv`; returns the manifest.

    Manifest columns: path (relative to `out`), label, split, group, speed (degrees per frame),
    event (0/1). Same arguments, same bytes: all randomness comes from `seed`.
    """
    if num_videos < 1 or frames < 3 or fps < 1:
        raise ValueError(
            f"make_videos needs num_videos >= 1, frames >= 3 (an erratic order must differ from "
            f"both directions) and fps >= 1; got {num_videos}, {frames}, {fps}."
        )
    if size < 16 or size % 2:
        raise ValueError(f"size must be even (yuv420p) and >= 16 to fit the circle; got {size}.")
    out = Path(out)
    clear_complete(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = plan_videos(rng, num_videos)
    for row in rows:
        radius = size * rng.uniform(0.2, 0.3)
        # Leave room for the largest dot (0.075 * size) plus its event ring.
        max_offset = size / 2 - radius - 0.075 * size - 2.0
        centre = tuple(size / 2 + rng.uniform(-max_offset, max_offset, 2))
        order = frame_order(row.label, frames, rng)
        positions = dot_positions(order, centre, radius, rng.uniform(0.0, 360.0), row.speed)
        write_mp4(out / row.path, _render_frames(rng, positions, size, bool(row.event)), fps)
    manifest = out / "manifest.csv"
    write_csv(manifest, [field.name for field in fields(VideoRow)], [astuple(row) for row in rows])
    mark_complete(
        out, make_videos, seed=seed, num_videos=num_videos, frames=frames, size=size, fps=fps
    )
    logger.info("wrote %d demo videos and %s", num_videos, manifest)
    return manifest
