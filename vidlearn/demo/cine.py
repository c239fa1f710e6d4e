"""Demo cardiac-MRI-like cine arrays: a pulsing bright 'ventricle' whose beat encodes age and sex.

Each sample is one heartbeat, starting at end-diastole (fully relaxed). A hidden age (uniform
20-80 years) lowers the contraction amplitude and lengthens systole; sex (0/1) changes the
ventricle's size and elongation. Both are learnable, age only from the motion.

Arrays are saved as uint8 `(T, H, W)` .npy files: 200 samples of 25x150x150 take 113 MB instead
of 450 MB as float32. Real MRI arrays are often float32 in [0, 1]; vidlearn's array reader takes
both.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from vidlearn.demo.completion import clear_complete, mark_complete, write_csv
from vidlearn.demo.drawing import shuffled_counts

logger = logging.getLogger(__name__)

AGE_RANGE = (20.0, 80.0)
COLUMNS = ("id", "age", "sex")
BLOOD, MUSCLE = 0.85, 0.35  # intensities in [0, 1], roughly those of bright-blood cine
NOISE_SIGMA = 0.03


def contraction_amplitude(age: float) -> float:
    """Share by which the ventricle's axes shrink at end-systole: 0.40 at 20 to 0.13 at 80."""
    return 0.40 - 0.0045 * (age - AGE_RANGE[0])


def systole_fraction(age: float) -> float:
    """Share of the beat spent contracting: 0.30 at 20 up to 0.50 at 80 (slower relaxation)."""
    return 0.30 + 0.20 * (age - AGE_RANGE[0]) / (AGE_RANGE[1] - AGE_RANGE[0])


def contraction(num_frames: int, systole: float) -> np.ndarray:
    """Contraction `(T,)` in [0, 1] per frame: 0 relaxed at frame 0, 1 at end-systole.

    A raised cosine rises over the first `systole` share of the beat and falls over the rest.
    """
    phase = np.arange(num_frames) / num_frames
    rising = 0.5 * (1 - np.cos(np.pi * phase / systole))
    falling = 0.5 * (1 + np.cos(np.pi * (phase - systole) / (1 - systole)))
    return np.where(phase < systole, rising, falling)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random texture `(size, size) float32` in [0, 1]: an 8x8 grid bilinearly upsampled."""
    grid = Image.fromarray(rng.uniform(0.0, 1.0, (8, 8)).astype(np.float32))
    return np.asarray(grid.resize((size, size), Image.Resampling.BILINEAR))


def render_cine(
    rng: np.random.Generator, age: float, sex: int, num_frames: int, size: int
) -> np.ndarray:
    """One beat as `(T, size, size) uint8`: textured dark chest, muscle ring, bright blood pool."""
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    body = np.sqrt((columns / (0.45 * size)) ** 2 + (rows / (0.38 * size)) ** 2)
    background = np.clip((1.0 - body) * 0.1 * size, 0.0, 1.0) * (0.1 + 0.15 * _texture(rng, size))

    # sex 1: larger and more elongated ventricle
    radius = size * (0.16 if sex else 0.13) * rng.uniform(0.92, 1.08)
    aspect = (1.30 if sex else 1.05) * rng.uniform(0.95, 1.05)
    semi_major, semi_minor = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    centre_y, centre_x = rng.uniform(-0.06, 0.06, 2) * size
    angle = np.deg2rad(rng.uniform(-30.0, 30.0))
    along = (columns - centre_x) * np.cos(angle) + (rows - centre_y) * np.sin(angle)
    across = -(columns - centre_x) * np.sin(angle) + (rows - centre_y) * np.cos(angle)
    # Ellipse "radius" of each pixel: 1 on the relaxed ventricle's edge.
    distance = np.sqrt((along / semi_major) ** 2 + (across / semi_minor) ** 2)  # (H, W)

    amplitude = np.clip(contraction_amplitude(age) + rng.normal(0.0, 0.02), 0.05, 0.5)
    squeeze = contraction(num_frames, systole_fraction(age))  # (T,)
    scale = (1.0 - amplitude * squeeze)[:, None, None]  # (T, 1, 1) axis scale per frame
    wall = 0.05 * size * (1.0 + 0.6 * squeeze)[:, None, None] / semi_minor  # thickens in systole
    # Soft 1 px edges: (scale - distance) * semi_minor is roughly the distance in pixels.
    blood = np.clip((scale - distance) * semi_minor + 0.5, 0.0, 1.0)  # (T, H, W)
    muscle = np.clip((scale + wall - distance) * semi_minor + 0.5, 0.0, 1.0)
    frames = background + (MUSCLE - background) * muscle
    frames = frames + (BLOOD - frames) * blood
    # Magnitude images: noise folded at zero, as in MRI's Rician background.
    frames = np.abs(frames + rng.normal(0.0, NOISE_SIGMA, frames.shape))
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)


def assign_folds(rng: np.random.Generator, sexes: np.ndarray, folds: int) -> np.ndarray:
    """Fold index per sample, stratified by sex: each sex shuffled, then dealt round robin.

    Dealing continues across sexes, so fold sizes differ by at most one.
    """
    order = np.concatenate([rng.permutation(np.flatnonzero(sexes == sex)) for sex in (0, 1)])
    fold_of = np.empty(len(sexes), dtype=np.int64)
    fold_of[order] = np.arange(len(sexes)) % folds
    return fold_of


def make_cine(
    out: Path,
    *,
    seed: int = 0,
    num_samples: int = 200,
    frames: int = 25,
    size: int = 150,
    folds: int = 5,
) -> Path:
    """Write `out/arrays/<id>.npy`, `out/labels.csv` and `out/folds/fold_<k>_{train,val}.csv`.

    CSV columns: id, age (years, one decimal), sex (0/1). Validation folds k = 0..folds-1 are
    disjoint, cover every id and are stratified by sex. Returns the labels CSV path.
    """
    if folds < 2 or num_samples < folds or frames < 2 or size < 32:
        raise ValueError(
            f"make_cine needs folds >= 2, num_samples >= folds, frames >= 2 and size >= 32; got "
            f"folds={folds}, num_samples={num_samples}, frames={frames}, size={size}."
        )
    out = Path(out)
    clear_complete(out)
    (out / "arrays").mkdir(parents=True, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(seed))
    ids = [f"case_{i:04d}" for i in range(num_samples)]
    ages = np.round(rng.uniform(*AGE_RANGE, num_samples), 1)
    sexes = shuffled_counts(rng, num_samples, (0, 1), (0.5, 0.5))
    rows = [(ids[i], float(ages[i]), int(sexes[i])) for i in range(num_samples)]
    for sample_id, age, sex in rows:
        np.save(out / "arrays" / f"{sample_id}.npy", render_cine(rng, age, sex, frames, size))
    fold_of = assign_folds(rng, sexes, folds)
    for fold in range(folds):
        for part, keep in (("train", fold_of != fold), ("val", fold_of == fold)):
            chosen = [row for row, kept in zip(rows, keep, strict=True) if kept]
            write_csv(out / "folds" / f"fold_{fold}_{part}.csv", COLUMNS, chosen)
    labels = out / "labels.csv"
    write_csv(labels, COLUMNS, rows)
    mark_complete(
        out, make_cine, seed=seed, num_samples=num_samples, frames=frames, size=size, folds=folds
    )
    logger.info("wrote %d demo cine arrays and %s", num_samples, labels)
    return labels
