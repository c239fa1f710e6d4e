"""Test-time views of a video: which clips of one video are averaged into its prediction.

A view sampler follows the clip-sampler contract of `vidlearn.data.clip_sampling`:
`sampler(num_frames, fps, rng) -> list[np.ndarray]`, each clip `(clip_length,) int64`. For all
sliding windows use `vidlearn.data.clip_sampling.SlidingWindowSampler`.
"""

from __future__ import annotations

import numpy as np

from vidlearn.data.clip_sampling import fit_to_video


class UniformClipsSampler:
    """`num_clips` clips of `clip_length` consecutive frames (`stride` apart), starts spread evenly."""

    def __init__(
        self, clip_length: int, num_clips: int = 5, stride: int = 1, short_video: str = "loop"
    ) -> None:
        if clip_length < 1 or num_clips < 1 or stride < 1:
            raise ValueError(
                f"clip_length ({clip_length}), num_clips ({num_clips}) and stride "
                f"({stride}) must all be >= 1"
            )
        self.clip_length, self.num_clips, self.stride, self.short_video = (
            clip_length,
            num_clips,
            stride,
            short_video,
        )

    def __call__(self, num_frames: int, fps: float, rng: np.random.Generator) -> list[np.ndarray]:
        span = (self.clip_length - 1) * self.stride + 1
        last_start = max(num_frames - span, 0)
        starts = np.unique(np.linspace(0, last_start, self.num_clips).round().astype(np.int64))
        offsets = np.arange(self.clip_length, dtype=np.int64) * self.stride
        return [fit_to_video(start + offsets, num_frames, self.short_video) for start in starts]
