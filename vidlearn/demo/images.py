"""Demo posture images: stick figures sitting, standing or lying, with an annotation export.

The manifest looks like a real labelling export rather than a clean benchmark: some rows have a
blank `primary_posture`, some images show several people (`num_people` > 1), some figures are
partly hidden behind a box (`occluded` "yes"; "unknown" where the annotator did not say), and the
images arrive in tranches of different sizes, each also exported on its own as
`labels/tranche_<t>.csv`. There is no split column: vidlearn derives splits itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidlearn.demo.completion import clear_complete, mark_complete, write_csv
from vidlearn.demo.drawing import gradient_background, hsv_colour, shuffled_counts, to_uint8

logger = logging.getLogger(__name__)

POSTURES = ("standing", "sitting", "lying")
POSTURE_PROPORTIONS = (0.45, 0.35, 0.20)  # deliberately imbalanced
BLANK_PROPORTION = 0.03  # rows whose primary_posture the annotator left empty
MULTI_PERSON_PROPORTION = 0.08
OCCLUSIONS = ("no", "yes", "unknown")
OCCLUSION_PROPORTIONS = (0.80, 0.15, 0.05)
TRANCHES = (1, 2, 3)
TRANCHE_PROPORTIONS = (0.40, 0.35, 0.25)
TRANCHE_NOISE = {1: 3.0, 2: 6.0, 3: 9.0}  # a different camera per tranche: a mild domain shift
JPEG_QUALITY = 90


@dataclass(frozen=True)
class ImageRow:
    """One manifest row; field order is the CSV's column order."""

    path: str
    primary_posture: str
    num_people: int
    occluded: str
    tranche: int


@dataclass(frozen=True, eq=False)  # array fields: equality would be ambiguous
class Figure:
    """A stick figure in (x, y) image coordinates: limb polylines and a round head."""

    lines: tuple[np.ndarray, ...]  # each (N, 2): torso, two arms, two legs
    head: np.ndarray  # (2,) centre
    head_radius: float

    def transformed(
        self, matrix: np.ndarray, scale: float = 1.0, shift: np.ndarray | float = 0.0
    ) -> Figure:
        """The figure with every point `p` mapped to `scale * matrix @ p + shift`."""
        lines = tuple(scale * line @ matrix.T + shift for line in self.lines)
        return Figure(lines, scale * matrix @ self.head + shift, scale * self.head_radius)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest (x, y) over limbs and head."""
        points = np.concatenate(
            [*self.lines, [self.head - self.head_radius, self.head + self.head_radius]]
        )
        return points.min(axis=0), points.max(axis=0)


@dataclass(frozen=True)
class ImagePlan:
    """One image: its manifest row and what is really drawn, which the row may leave blank."""

    row: ImageRow
    postures: tuple[str, ...]  # primary figure first; as many as row.num_people
    occluded: bool


def _direction(angle: float) -> np.ndarray:
    """Unit vector (x, y) in image coordinates for `angle` degrees: 0 points down, 90 right."""
    radians = np.deg2rad(angle)
    return np.array([np.sin(radians), np.cos(radians)])


def make_figure(rng: np.random.Generator, posture: str) -> Figure:
    """A stick figure about 1 unit tall with jittered limb lengths and joint angles.

    "lying" is a standing pose turned on its side; every figure faces left or right at random.
    """
    length = {
        name: base * rng.uniform(0.85, 1.15)
        for name, base in (
            ("head", 0.09),
            ("torso", 0.33),
            ("upper_arm", 0.16),
            ("forearm", 0.15),
            ("thigh", 0.24),
            ("shin", 0.22),
        )
    }
    if posture == "sitting":
        # Thighs forward, shins down, hands resting towards the lap.
        torso = 180 + rng.uniform(-10, 10)
        thigh, shin = 90 + rng.uniform(-12, 12), rng.uniform(-12, 12)
        legs = [(thigh + rng.uniform(-5, 5), shin + rng.uniform(-5, 5)) for _ in range(2)]
        arms = [(25 + rng.uniform(-15, 15), 80 + rng.uniform(-20, 20)) for _ in range(2)]
    elif posture in ("standing", "lying"):
        torso = 180 + rng.uniform(-6, 6)
        legs = [(side * rng.uniform(4, 15), side * rng.uniform(0, 10)) for side in (-1, 1)]
        arms = [(side * rng.uniform(10, 45), side * rng.uniform(0, 40)) for side in (-1, 1)]
    else:
        raise ValueError(f"posture {posture!r} is not one of {POSTURES}")
    hip = np.zeros(2)
    neck = hip + length["torso"] * _direction(torso)
    lines = [np.stack([hip, neck])]
    for upper, lower in arms:
        elbow = neck + length["upper_arm"] * _direction(upper)
        lines.append(np.stack([neck, elbow, elbow + length["forearm"] * _direction(lower)]))
    for upper, lower in legs:
        knee = hip + length["thigh"] * _direction(upper)
        lines.append(np.stack([hip, knee, knee + length["shin"] * _direction(lower)]))
    figure = Figure(tuple(lines), neck + length["head"] * _direction(torso), length["head"])
    turn = np.deg2rad(
        rng.choice([-90.0, 90.0]) + rng.uniform(-10, 10) if posture == "lying" else 0.0
    )
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return figure.transformed(rotation @ np.diag([rng.choice([-1.0, 1.0]), 1.0]))


def _pil_colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    """An RGB colour as the integer tuple PIL drawing takes."""
    red, green, blue = (int(channel) for channel in hsv_colour(hue, saturation, value))
    return red, green, blue


def _muted_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A dull colour for clutter and occluders."""
    return _pil_colour(rng.uniform(0, 1), rng.uniform(0.0, 0.4), rng.uniform(0.2, 0.8))


def _draw_clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: int) -> None:
    """0-4 background rectangles (filled or outlined) and lines."""
    for _ in range(rng.integers(0, 5)):
        corners = np.sort(rng.uniform(0, size, (2, 2)), axis=0)  # rows: (x0, y0), (x1, y1)
        box = [float(value) for value in corners.ravel()]
        width = int(rng.integers(1, 4))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.rectangle(box, fill=_muted_colour(rng))
        elif kind == 1:
            draw.rectangle(box, outline=_muted_colour(rng), width=width)
        else:
            draw.line(box, fill=_muted_colour(rng), width=width)


def _draw_figure(rng: np.random.Generator, draw: ImageDraw.ImageDraw, figure: Figure) -> None:
    """Draw limbs with round joints in a shirt and a trousers colour, then a skin-toned head."""
    thickness = max(1, round(figure.head_radius * rng.uniform(0.4, 0.8)))
    shirt, trousers = (
        _pil_colour(rng.uniform(0, 1), rng.uniform(0.4, 0.9), rng.uniform(0.5, 1.0))
        for _ in range(2)
    )
    skin = _pil_colour(rng.uniform(0.04, 0.1), rng.uniform(0.3, 0.6), rng.uniform(0.45, 0.95))
    for index, line in enumerate(figure.lines):
        colour = trousers if index >= 3 else shirt  # lines: torso, arm, arm, leg, leg
        points = [tuple(point) for point in line.tolist()]
        draw.line(points, fill=colour, width=thickness, joint="curve")
        for x, y in points:
            draw.ellipse(
                [x - thickness / 2, y - thickness / 2, x + thickness / 2, y + thickness / 2],
                fill=colour,
            )
    x, y = figure.head
    radius = figure.head_radius
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=skin)


def _place(
    rng: np.random.Generator,
    figure: Figure,
    region: tuple[float, float, float, float],
    fill: tuple[float, float],
) -> Figure:
    """Scale `figure` to a random `fill` share of the most that fits `region` (x0, y0, x1, y1).

    The scaled figure goes to a random spot inside the region.
    """
    low, high = figure.bounds()
    room = np.array([region[2] - region[0], region[3] - region[1]])
    scale = float(np.min(room / (high - low))) * rng.uniform(*fill)
    slack = room - scale * (high - low)
    shift = np.array(region[:2]) + rng.uniform(0, 1, 2) * slack - scale * low
    return figure.transformed(np.eye(2), scale, shift)


def _occlude(rng: np.random.Generator, draw: ImageDraw.ImageDraw, figure: Figure) -> None:
    """Cover 30-60% of the figure's box from one side with a flat box."""
    (x0, y0), (x1, y1) = figure.bounds()
    cover = rng.uniform(0.3, 0.6)
    margin = 0.1 * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    side = rng.integers(0, 4)
    if side == 0:
        y0 = y1 - cover * (y1 - y0)
    elif side == 1:
        y1 = y0 + cover * (y1 - y0)
    elif side == 2:
        x0 = x1 - cover * (x1 - x0)
    else:
        x1 = x0 + cover * (x1 - x0)
    draw.rectangle([x0, y0, x1, y1], fill=_muted_colour(rng))


def render_image(
    rng: np.random.Generator, size: int, postures: Sequence[str], occluded: bool, noise: float
) -> Image.Image:
    """Draw one scene: background, clutter, one figure per posture side by side, optional occluder.

    The first posture is the primary figure: drawn larger than the others and the one occluded.
    """
    background = gradient_background(rng, size, size)
    image = Image.fromarray(to_uint8(background))
    draw = ImageDraw.Draw(image)
    _draw_clutter(rng, draw, size)
    slots = rng.permutation(len(postures))
    width = size / len(postures)
    placed = []
    for posture, slot in zip(postures, slots, strict=True):
        region = (slot * width + 1, 1.0, (slot + 1) * width - 1, size - 1.0)
        fill = (0.75, 0.95) if not placed else (0.5, 0.8)
        placed.append(_place(rng, make_figure(rng, posture), region, fill))
        _draw_figure(rng, draw, placed[-1])
    if occluded:
        _occlude(rng, draw, placed[0])
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.standard_normal(pixels.shape, dtype=np.float32) * noise
    return Image.fromarray(to_uint8(pixels))


def plan_images(rng: np.random.Generator, num_images: int) -> list[ImagePlan]:
    """Draw every manifest row and the scene behind it.

    Shares are exact (see `shuffled_counts`). A blank row still shows a figure: the annotator
    skipped it. An "unknown" occlusion is drawn half of the time.
    """
    postures = shuffled_counts(rng, num_images, POSTURES, POSTURE_PROPORTIONS)
    blank = shuffled_counts(
        rng, num_images, (True, False), (BLANK_PROPORTION, 1 - BLANK_PROPORTION)
    )
    crowded = shuffled_counts(
        rng, num_images, (True, False), (MULTI_PERSON_PROPORTION, 1 - MULTI_PERSON_PROPORTION)
    )
    occlusion = shuffled_counts(rng, num_images, OCCLUSIONS, OCCLUSION_PROPORTIONS)
    # Tranches arrive one after the other, so each is a contiguous block of image numbers.
    tranches = np.sort(shuffled_counts(rng, num_images, TRANCHES, TRANCHE_PROPORTIONS))
    plans = []
    for i in range(num_images):
        num_people = int(rng.choice([2, 3], p=[0.7, 0.3])) if crowded[i] else 1
        others = rng.choice(POSTURES, size=num_people - 1, p=POSTURE_PROPORTIONS)
        row = ImageRow(
            path=f"images/tranche_{tranches[i]}/img_{i:05d}.jpg",
            primary_posture="" if blank[i] else str(postures[i]),
            num_people=num_people,
            occluded=str(occlusion[i]),
            tranche=int(tranches[i]),
        )
        occluded = occlusion[i] == "yes" or (occlusion[i] == "unknown" and rng.uniform() < 0.5)
        plans.append(ImagePlan(row, (str(postures[i]), *map(str, others)), bool(occluded)))
    return plans


def make_images(out: Path, *, seed: int = 0, num_images: int = 900, size: int = 96) -> Path:
    """Write JPEGs under `out/images/tranche_<t>/`, per-tranche label CSVs and the manifest.

    `out/manifest.csv` has columns path (relative to `out`), primary_posture, num_people,
    occluded, tranche; `out/labels/tranche_<t>.csv` holds the same columns for one tranche, as
    the annotation tool exported them. Returns the manifest path.
    """
    if num_images < 1 or size < 32:
        raise ValueError(
            f"make_images needs num_images >= 1 and size >= 32 (smaller figures are unreadable); "
            f"got num_images={num_images}, size={size}."
        )
    out = Path(out)
    clear_complete(out)
    rng = np.random.Generator(np.random.PCG64(seed))
    plans = plan_images(rng, num_images)
    for plan in plans:
        path = out / plan.row.path
        path.parent.mkdir(parents=True, exist_ok=True)
        noise = TRANCHE_NOISE[plan.row.tranche]
        image = render_image(rng, size, plan.postures, plan.occluded, noise)
        image.save(path, format="JPEG", quality=JPEG_QUALITY)
    columns = [field.name for field in fields(ImageRow)]
    rows = [astuple(plan.row) for plan in plans]
    for tranche in TRANCHES:
        tranche_rows = [
            row for plan, row in zip(plans, rows, strict=True) if plan.row.tranche == tranche
        ]
        write_csv(out / "labels" / f"tranche_{tranche}.csv", columns, tranche_rows)
    manifest = out / "manifest.csv"
    write_csv(manifest, columns, rows)
    mark_complete(out, make_images, seed=seed, num_images=num_images, size=size)
    logger.info("wrote %d demo images and %s", num_images, manifest)
    return manifest
