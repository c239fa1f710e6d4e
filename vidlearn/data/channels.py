"""The channel count of a data set's frames, and normalisation statistics that fit it.

Known in the main process during `setup`, before any worker starts: the model presets take
`in_channels` from `data.channels`, and a `data.mean`/`data.std` that does not fit the frames is
refused here rather than inside a DataLoader worker. Videos decode to 3 channels (RGB), images
are converted to RGB, frame arrays have 1 (`(T, H, W)` grey) or V (`(T, H, W, V)`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vidlearn.data.video import ARRAY_EXTENSIONS, DecodeError, open_video
from vidlearn.errors import ConfigError, UserError

# Every decoder returns videos as RGB, and read_image converts every image to RGB.
RGB = 3
# As many unreadable files in a row as a Dataset substitutes before it gives up.
MAX_ATTEMPTS = 10


def video_channels(path: str, backend: str) -> int:
    """Channels of a file as VideoClipDataset reads it: RGB for videos, the array's own count.

    Only frame arrays are opened (memory-mapped, the first frame read); DecodeError when one
    cannot be read.
    """
    if not path.lower().endswith(ARRAY_EXTENSIONS):
        return RGB
    reader = open_video(path, backend)
    try:
        return int(reader.read([0]).shape[-1])  # (1, H, W, C)
    finally:
        reader.close()


def check_pixel_scale(path: str, backend: str) -> None:
    """ConfigError when `path` is an array of integers (not uint8) whose first frame exceeds 1.

    Without `data.per_frame_max_norm`, frames that are not uint8 are taken to be in [0, 1]
    (vidlearn.data.transforms): int16/uint16 scanner units have no known white level and would
    reach the model thousands of times too large. 0/1 masks and bool arrays pass.
    """
    if not path.lower().endswith(ARRAY_EXTENSIONS):
        return
    reader = open_video(path, backend)
    try:
        if reader.dtype.kind not in "iu" or reader.dtype == np.uint8:
            return
        peak = reader.read([0]).max()
    finally:
        reader.close()
    if peak > 1:
        raise ConfigError(
            f"{path} holds {reader.dtype} frames (first frame's maximum {peak:g}), which "
            "vidlearn would read as values in [0, 1]; set data.per_frame_max_norm=true (each "
            "frame divided by its own maximum), or save the arrays as uint8 or as float in [0, 1]."
        )


def resolve_channels(
    requested: int | None, paths: Sequence[str], channels_of: Callable[[str], int]
) -> tuple[int, str]:
    """(channels, file) of the first readable file of `paths`, checked against `data.channels`.

    `requested` is `data.channels`: None takes the count from the file; a number must agree with
    it. Unreadable files are passed over (training substitutes them too), up to MAX_ATTEMPTS.
    """
    problems = []
    for path in paths[:MAX_ATTEMPTS]:
        try:
            found = channels_of(path)
        except DecodeError as error:
            problems.append(str(error))
            continue
        if requested is not None and requested != found:
            raise ConfigError(
                f"data.channels={requested} but {path} has {found} channel(s); set "
                f"data.channels={found}, or data.channels=null to take the count from the files."
            )
        return found, path
    raise UserError(
        f"the first {len(problems)} training file(s) cannot be read, so their channel count is "
        "unknown; fix or remove them:\n" + "\n".join(problems)
    )


def fit_statistics(
    mean: Sequence[float], std: Sequence[float], channels: int, source: str
) -> tuple[list[float], list[float]]:
    """`data.mean` and `data.std` with one value per channel; a single value serves every channel.

    Raises ConfigError naming both keys when either has another number of values than 1 or
    `channels`; `source` is the file the channel count was read from.
    """
    wrong = [
        f"data.{key} has {len(values)} values ({list(values)})"
        for key, values in (("mean", mean), ("std", std))
        if len(values) not in (1, channels)
    ]
    if wrong:
        example = ",".join(["0.5"] * channels)
        raise ConfigError(
            f"{source} has {channels} channel(s) but {' and '.join(wrong)}; give data.mean and "
            f"data.std {channels} value(s) each (e.g. data.mean=[{example}]) or one value for "
            "every channel (data.mean=[0.5] data.std=[0.25])."
        )
    return _per_channel(mean, channels), _per_channel(std, channels)


def _per_channel(values: Sequence[float], channels: int) -> list[float]:
    return [float(value) for value in values] * (channels if len(values) == 1 else 1)
