"""Which frames to read: `sampler(num_frames, fps, rng) -> list[np.ndarray]`, each clip `(clip_length,) int64`.

Samplers are stateless. Random ones draw only from `rng`, the generator of the item being read
(`vidlearn.data.sample_keys.sample_generator`, derived from seed, epoch and draw position), so a
clip's frames do not depend on which worker reads it; deterministic ones ignore it.

Videos shorter than a clip's span follow `short_video`: "loop" (indices wrap around),
"repeat_last" (indices stop at the last frame) or "skip" (ShortVideoError, which the dataset
treats like any unreadable file: substituted and reported).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from vidlearn.data.video import DecodeError
from vidlearn.errors import ConfigError

SHORT_VIDEO_MODES = ("loop", "repeat_last", "skip")

ClipSampler = Callable[[int, float, np.random.Generator], list[np.ndarray]]


class ShortVideoError(DecodeError):
    """A video has fewer frames than a clip needs and `short_video="skip"` was asked for."""


def check_options(
    clip_length: int, stride: int, short_video: str, target_fps: float | None = None
) -> None:
    """Reject impossible settings when the sampler is built, naming the config key."""
    check_number("clip_length", clip_length, minimum=1)
    check_number("stride", stride, minimum=1)
    if short_video not in SHORT_VIDEO_MODES:
        raise ConfigError(f"short_video must be one of {SHORT_VIDEO_MODES}, got {short_video!r}")
    if target_fps is not None:
        check_number("target_fps", target_fps, above=0, integer=False, nullable=True)


def check_number(
    key: str,
    value: object,
    *,
    minimum: float | None = None,
    above: float | None = None,
    integer: bool = True,
    nullable: bool = False,
) -> None:
    """ConfigError naming `key` unless `value` is a number (a whole one when `integer`) of at
    least `minimum` / above `above`: config values arrive as whatever the user typed."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "a whole number" if integer else "a number"
        raise ConfigError(f"{key} must be {what}{' or null' if nullable else ''}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(
            f"{key} must be a finite number{' or null' if nullable else ''}, got {value}"
        )
    if minimum is not None and value < minimum:
        raise ConfigError(
            f"{key} must be >= {minimum}{' or null' if nullable else ''}, got {value}"
        )
    if above is not None and value <= above:
        raise ConfigError(f"{key} must be > {above}{' or null' if nullable else ''}, got {value}")


def frame_stride(stride: int, target_fps: float | None, fps: float) -> int:
    """`stride`, or the step that brings `fps` down to `target_fps` (30 fps, target 10 -> 3)."""
    if target_fps is None:
        return stride
    if fps <= 0:
        raise DecodeError(
            f"frame rate unknown (fps={fps}), so target_fps={target_fps} cannot set the stride; "
            "set clip_sampler.target_fps: null and choose clip_sampler.stride instead"
        )
    return max(1, round(fps / target_fps))


def fit_to_video(indices: np.ndarray, num_frames: int, short_video: str) -> np.ndarray:
    """Bring indices that run past the last frame back inside `[0, num_frames)` per `short_video`."""
    if num_frames < 1:
        raise ShortVideoError("the video has no frames; re-export it or remove its row")
    if indices.max() < num_frames:
        return indices
    if short_video == "loop":
        return indices % num_frames
    if short_video == "repeat_last":
        return np.minimum(indices, num_frames - 1)
    raise ShortVideoError(
        f"{num_frames} frames, but a clip spans {indices.max() + 1}; "
        "use short_video: loop or repeat_last to keep short videos"
    )


class _ConsecutiveClipSampler(ABC):
    """One clip of `clip_length` frames, `stride` apart; subclasses choose the first frame."""

    def __init__(
        self,
        clip_length: int,
        stride: int = 1,
        target_fps: float | None = None,
        short_video: str = "loop",
    ) -> None:
        check_options(clip_length, stride, short_video, target_fps)
        self.clip_length, self.stride, self.target_fps, self.short_video = (
            clip_length,
            stride,
            target_fps,
            short_video,
        )

    @abstractmethod
    def first_frame(self, num_frames: int, span: int, rng: np.random.Generator) -> int:
        """Index of the clip's first frame, for a clip covering `span` frames."""

    def __call__(self, num_frames: int, fps: float, rng: np.random.Generator) -> list[np.ndarray]:
        step = frame_stride(self.stride, self.target_fps, fps)
        span = (self.clip_length - 1) * step + 1
        start = self.first_frame(num_frames, span, rng)
        indices = start + np.arange(self.clip_length, dtype=np.int64) * step
        return [fit_to_video(indices, num_frames, self.short_video)]


class RandomClipSampler(_ConsecutiveClipSampler):
    """One clip of `clip_length` frames, `stride` apart, starting at a uniformly random frame."""

    def first_frame(self, num_frames: int, span: int, rng: np.random.Generator) -> int:
        return int(rng.integers(0, max(num_frames - span, 0), endpoint=True))


class CenterClipSampler(_ConsecutiveClipSampler):
    """One clip of `clip_length` frames, `stride` apart, centred in the video (evaluation)."""

    def first_frame(self, num_frames: int, span: int, rng: np.random.Generator) -> int:
        return max((num_frames - span) // 2, 0)


class UniformSegmentSampler:
    """TSN: split the video into `clip_length` equal segments and take one frame from each.

    With `random_offset` (training) each segment's frame is drawn uniformly within it; without
    (evaluation) it is the segment's centre. Videos shorter than `clip_length` repeat frames.
    See Wang et al., "Temporal Segment Networks", ECCV 2016.
    """

    def __init__(self, clip_length: int, random_offset: bool = True) -> None:
        check_options(clip_length, 1, "loop")
        self.clip_length, self.random_offset = clip_length, random_offset

    def __call__(self, num_frames: int, fps: float, rng: np.random.Generator) -> list[np.ndarray]:
        if num_frames < 1:
            raise ShortVideoError("the video has no frames; re-export it or remove its row")
        segments = np.arange(self.clip_length, dtype=np.float64)
        offsets = rng.random(self.clip_length) if self.random_offset else 0.5
        indices = np.floor((segments + offsets) * num_frames / self.clip_length).astype(np.int64)
        return [np.minimum(indices, num_frames - 1)]  # guards float rounding at the very end


class SlidingWindowSampler:
    """Every clip of `clip_length` frames, `stride` apart, starting each `hop` frames (test-time).

    `target_fps` replaces `stride` by fps / target_fps, as in the training samplers. `hop`
    defaults to the clip's span (windows touch without overlapping). A last window ending at the
    final frame is added when the hops leave frames uncovered, so every frame is seen.
    """

    def __init__(
        self,
        clip_length: int,
        stride: int = 1,
        hop: int | None = None,
        short_video: str = "loop",
        target_fps: float | None = None,
    ) -> None:
        check_options(clip_length, stride, short_video, target_fps)
        if hop is not None:
            check_number("hop", hop, minimum=1, nullable=True)
        self.clip_length, self.stride, self.short_video = clip_length, stride, short_video
        # hop null = the clip's span, known here unless target_fps makes it depend on the fps
        self.hop = hop if hop or target_fps else (clip_length - 1) * stride + 1
        self.target_fps = target_fps

    def __call__(self, num_frames: int, fps: float, rng: np.random.Generator) -> list[np.ndarray]:
        step = frame_stride(self.stride, self.target_fps, fps)
        offsets = np.arange(self.clip_length, dtype=np.int64) * step
        span = int(offsets[-1]) + 1
        if num_frames <= span:
            return [fit_to_video(offsets, num_frames, self.short_video)]
        starts = list(range(0, num_frames - span + 1, self.hop or span))
        if starts[-1] + span < num_frames:
            starts.append(num_frames - span)
        return [start + offsets for start in starts]


class ShuffledFrames:
    """Another sampler's clips with their frames in random order: the order-agnostic control.

    A model that still scores well on shuffled clips is not using temporal order; vidlearn's
    demo videos are built so that it cannot (their classes differ only in frame order).
    """

    def __init__(self, sampler: ClipSampler) -> None:
        self.sampler = sampler

    def __call__(self, num_frames: int, fps: float, rng: np.random.Generator) -> list[np.ndarray]:
        return [rng.permutation(clip) for clip in self.sampler(num_frames, fps, rng)]


def temporal_sampling(sampler: ClipSampler) -> dict[str, Any]:
    """How a (training) clip sampler spaces a clip's frames, for the checkpoint's preprocessing.

    `clip_sampler` (its class name; a ShuffledFrames control names the sampler it shuffles),
    `stride` and `target_fps`: test-time views read frames with the same spacing.
    """
    inner = getattr(sampler, "sampler", sampler)  # ShuffledFrames wraps the sampler that spaces
    return {
        "clip_sampler": type(inner).__name__,
        "stride": int(getattr(inner, "stride", 1)),
        "target_fps": getattr(inner, "target_fps", None),
    }
