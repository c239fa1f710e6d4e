"""Test-time views of a video: which clips of one video are averaged into its prediction.

A view sampler follows the clip-sampler contract of `vidlearn.data.clip_sampling`:
`sampler(num_frames, fps, rng) -> list[np.ndarray]`, each clip `(clip_length,) int64`. For all
sliding windows use `vidlearn.data.clip_sampling.SlidingWindowSampler`. `build_views` gives a
view sampler the clip length and frame spacing (stride, target fps) the model was trained with.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from hydra.utils import get_class, instantiate

from vidlearn.data.clip_sampling import (
    ClipSampler,
    SlidingWindowSampler,
    check_number,
    check_options,
    fit_to_video,
    frame_stride,
)

logger = logging.getLogger(__name__)

TEMPORAL_KEYS = ("stride", "target_fps")


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


def build_views(config: Mapping[str, Any] | None, preprocessing: Mapping[str, Any]) -> ClipSampler:
    """The view sampler of `config` (a Hydra node; None = sliding windows) with the trained clip
    length and spacing; a stride or target_fps the config sets itself wins."""
    sampling = trained_sampling(preprocessing)
    if config is None:
        return SlidingWindowSampler(**sampling)
    accepted = inspect.signature(get_class(config["_target_"])).parameters
    chosen = {key: config[key] for key in TEMPORAL_KEYS if config.get(key) is not None}
    if chosen:
        logger.info("views: %s set in the config (trained with %s)", chosen, sampling)
    extra = {
        key: value
        for key, value in sampling.items()
        if key in accepted and key != "clip_length" and not (chosen and key in TEMPORAL_KEYS)
    }  # a spacing set in the config replaces the trained one whole (a trained fps would win)
    if preprocessing.get("clip_sampler") == "UniformSegmentSampler":
        logger.warning(
            "the model was trained on UniformSegmentSampler clips (one frame per segment); for "
            "the same views set '~views' "
            "'+views={_target_: vidlearn.data.clip_sampling.UniformSegmentSampler, "
            "random_offset: false}'"
        )
    return instantiate(config, clip_length=sampling["clip_length"], **extra)
