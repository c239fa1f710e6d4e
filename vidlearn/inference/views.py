"""Test-time views of a video: which clips and which crops are averaged into its prediction.

A view grid is `clips x crops`. The clips come from a clip sampler following the contract of
`vidlearn.data.clip_sampling`: `sampler(num_frames, fps, rng) -> list[np.ndarray]`, each clip
`(clip_length,) int64` (centre: `CenterClipSampler`, evenly spread: `UniformClipsSampler`, every
window: `SlidingWindowSampler`). The crops are spatial: 1 = the whole frame resized to the
model's size (as validation did during training); 3 = the short side resized to the model's size
and three square crops of that size along the long side (left, centre, right; or top, centre,
bottom), the "K clips x 3 crops" protocol of SlowFast and X3D. `build_views` reads the `views`
config group (conf/views/) and gives its clip sampler the clip length and frame spacing (stride,
target fps) the model was trained with; a model trained on UniformSegmentSampler clips is viewed
on its one segment clip per video.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate

from vidlearn.data.clip_sampling import (
    CenterClipSampler,
    ClipSampler,
    SlidingWindowSampler,
    UniformSegmentSampler,
    check_number,
    check_options,
    fit_to_video,
    frame_stride,
)
from vidlearn.data.transforms import resize_to
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

TEMPORAL_KEYS = ("stride", "target_fps")
CROP_CHOICES = (1, 3)
FULL_FRAME = "full"  # the name of the one view of crops=1


class UniformClipsSampler:
    """`num_clips` clips of `clip_length` frames (`stride` apart, or fps / `target_fps`), starts
    spread evenly."""

    def __init__(
        self,
        clip_length: int,
        num_clips: int = 5,
        stride: int = 1,
        short_video: str = "loop",
        target_fps: float | None = None,
    ) -> None:
        check_options(clip_length, stride, short_video, target_fps)
        check_number("num_clips", num_clips, minimum=1)
        self.clip_length, self.num_clips, self.stride = clip_length, num_clips, stride
        self.short_video, self.target_fps = short_video, target_fps

    def __call__(self, num_frames: int, fps: float, rng: np.random.Generator) -> list[np.ndarray]:
        offsets = np.arange(self.clip_length, dtype=np.int64) * frame_stride(
            self.stride, self.target_fps, fps
        )
        last_start = max(num_frames - int(offsets[-1]) - 1, 0)
        starts = np.unique(np.linspace(0, last_start, self.num_clips).round().astype(np.int64))
        return [fit_to_video(start + offsets, num_frames, self.short_video) for start in starts]


@dataclass(frozen=True)
class Views:
    """The clips of a video (`clips`, a clip sampler) times `crops` spatial crops (1 or 3).

    `centre` samples the single view's clip: one clip centred in the video, with the clip
    length and spacing of `clips` (`centre_sampler`). The single view is that clip's centre
    crop (the full frame for crops=1), reported beside the average of all views.
    """

    clips: ClipSampler
    crops: int = 1
    centre: ClipSampler | None = None  # None: the first clip of `clips`

    def __post_init__(self) -> None:
        if self.crops not in CROP_CHOICES:
            raise ConfigError(f"views.crops must be 1 or 3, got {self.crops!r}")

    @property
    def single_crop(self) -> str:
        """The name of the single view's crop: the full frame, or the centre one of three."""
        return FULL_FRAME if self.crops == 1 else "centre"

    def crop(self, frames: np.ndarray, size: int) -> list[tuple[str, np.ndarray]]:
        """`(name, crop)` of each crop of a clip `(T, H, W, C)` or image `(H, W, C)`; crops=1:
        the frames unchanged (the transform resizes them whole, as validation did)."""
        if self.crops == 1:
            return [(FULL_FRAME, frames)]
        height, width = frames.shape[-3:-1]
        return list(zip(three_crop_names(height, width), three_crops(frames, size), strict=True))


def three_crop_names(height: int, width: int) -> tuple[str, str, str]:
    """left/centre/right for a frame at least as wide as tall, else top/centre/bottom."""
    return ("left", "centre", "right") if width >= height else ("top", "centre", "bottom")


def three_crops(frames: np.ndarray, size: int) -> list[np.ndarray]:
    """A clip `(T, H, W, C)` or an image `(H, W, C)` -> three square crops of side `size`, same
    layout and dtype, in `three_crop_names` order: the short side is resized to `size` (aspect
    kept, bilinear), then the crops start at the beginning, the centre (rounded down) and the end
    of the long side."""
    *lead, height, width, channels = frames.shape
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    stacked = np.moveaxis(frames.reshape(-1, height, width, channels), 0, 2)  # (H, W, T, C)
    resized = resize_to(stacked.reshape(height, width, -1), new_h, new_w)  # one resize per clip
    resized = np.moveaxis(resized.reshape(new_h, new_w, -1, channels), 2, 0)
    resized = resized.reshape(*lead, new_h, new_w, channels)
    long_side = max(new_h, new_w)
    starts = (0, (long_side - size) // 2, long_side - size)
    if new_w >= new_h:
        return [resized[..., :, start : start + size, :] for start in starts]
    return [resized[..., start : start + size, :, :] for start in starts]


def trained_sampling(preprocessing: Mapping[str, Any]) -> dict[str, Any]:
    """`clip_length`, `stride` and `target_fps` of the training clips, from a checkpoint's
    preprocessing. Checkpoints written before vidlearn recorded the spacing read stride 1."""
    sampling = {"clip_length": int(preprocessing.get("frames", 1))}
    if "stride" not in preprocessing:
        logger.warning(
            "the checkpoint does not record the frame spacing it was trained with (written by an "
            "older vidlearn): views read consecutive frames (stride 1); set views.stride or "
            "views.target_fps to the training clip sampler's."
        )
        return {**sampling, "stride": 1, "target_fps": None}
    return {
        **sampling,
        "stride": int(preprocessing["stride"]),
        "target_fps": preprocessing.get("target_fps"),
    }


def build_views(config: Mapping[str, Any] | None, preprocessing: Mapping[str, Any]) -> Views:
    """The views of `config` (the `views` group: a clip sampler's `_target_` and arguments, plus
    `crops`; None = sliding windows, one crop) with the trained clip length and spacing; a
    stride or target_fps the config sets itself wins. A model trained on UniformSegmentSampler
    clips (frames spread over the whole video) is viewed on those, whatever sampler the config
    names: windows of consecutive frames would be another input. Images have no clips: only
    their `crops` are read."""
    crops = (config or {}).get("crops", 1)
    if preprocessing.get("modality") == "image":
        return Views(CenterClipSampler(1), crops)  # one "clip" of the one image
    sampling = trained_sampling(preprocessing)
    segments = config is not None and get_class(config["_target_"]) is UniformSegmentSampler
    if preprocessing.get("clip_sampler") == "UniformSegmentSampler" and not segments:
        logger.warning(
            "the model was trained on UniformSegmentSampler clips (frames spread over the whole "
            "video): views take that one clip per video, with views.crops, instead of %s",
            "sliding windows" if config is None else config["_target_"],
        )
        clip = UniformSegmentSampler(sampling["clip_length"], random_offset=False)
        return Views(clip, crops, clip)
    if config is None:
        sliding = SlidingWindowSampler(**sampling)
        return Views(sliding, 1, centre_sampler(sliding))
    config = {key: value for key, value in config.items() if key != "crops"}  # the Views' own
    accepted = inspect.signature(get_class(config["_target_"])).parameters
    unknown = sorted(key for key in config if key != "_target_" and key not in accepted)
    if unknown:  # e.g. a preset's views.num_clips left behind by views=center on the command line
        raise ConfigError(
            f"views.{unknown[0]} is not an option of {config['_target_']}; remove it "
            f"('~views.{unknown[0]}') or pick a views group that takes it (views=uniform takes "
            "num_clips, views=sliding takes hop)."
        )
    chosen = {key: config[key] for key in TEMPORAL_KEYS if config.get(key) is not None}
    if chosen:
        logger.info("views: %s set in the config (trained with %s)", chosen, sampling)
    extra = {
        key: value
        for key, value in sampling.items()
        if key in accepted and key != "clip_length" and not (chosen and key in TEMPORAL_KEYS)
    }  # a spacing set in the config replaces the trained one whole (a trained fps would win)
    try:
        clips = instantiate(config, clip_length=sampling["clip_length"], **extra)
    except InstantiationException as error:  # the sampler's own check, e.g. "num_clips must..."
        if isinstance(error.__cause__, ConfigError):
            raise ConfigError(f"views.{error.__cause__}") from None
        raise
    return Views(clips, crops, centre_sampler(clips))


def centre_sampler(clips: ClipSampler) -> ClipSampler:
    """The single view's clip for a view sampler: for evenly spread clips or sliding windows, a
    centred clip of the same length, spacing and short-video rule; any other sampler (one clip
    per video, e.g. CenterClipSampler) is its own single view (its first clip)."""
    if not isinstance(clips, UniformClipsSampler | SlidingWindowSampler):
        return clips
    return CenterClipSampler(clips.clip_length, clips.stride, clips.target_fps, clips.short_video)
