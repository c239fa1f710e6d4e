"""Clip samplers: exact indices on small cases, bounds, short videos, frame-rate strides, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vidlearn.data.clip_sampling import (
    CenterClipSampler,
    RandomClipSampler,
    ShortVideoError,
    ShuffledFrames,
    SlidingWindowSampler,
    UniformSegmentSampler,
)
from vidlearn.data.video import DecodeError

CLIP_SAMPLER_DIR = Path(__file__).resolve().parents[2] / "conf" / "clip_sampler"


def rng_of(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


class FixedDraws(np.random.Generator):
    """A generator whose integers are the highest allowed and whose floats are 0.999."""

    def __init__(self) -> None:
        super().__init__(np.random.PCG64(0))
        self.integer_calls: list[tuple[int, int]] = []

    def integers(self, low: int, high: int, endpoint: bool = False, **kwargs: object) -> int:
        self.integer_calls.append((low, high))
        return high if endpoint else high - 1

    def random(self, size: int | None = None, **kwargs: object) -> np.ndarray:
        return np.full(size, 0.999)


def only_clip(clips: list[np.ndarray]) -> list[int]:
    assert len(clips) == 1 and clips[0].dtype == np.int64
    return clips[0].tolist()


def test_random_clip_sampler_starts_where_its_generator_says() -> None:
    rng = FixedDraws()
    clip = RandomClipSampler(clip_length=3, stride=2)(num_frames=10, fps=30.0, rng=rng)
    assert only_clip(clip) == [5, 7, 9]
    assert rng.integer_calls == [(0, 5)]  # the latest start whose clip still ends inside the video


@pytest.mark.parametrize(
    "sampler",
    [RandomClipSampler(4), UniformSegmentSampler(4), ShuffledFrames(CenterClipSampler(4))],
)
def test_random_samplers_draw_only_from_the_generator_they_are_given(
    sampler: RandomClipSampler | UniformSegmentSampler | ShuffledFrames,
) -> None:
    draws = [sampler(40, 30.0, rng_of(seed))[0].tolist() for seed in (5, 5, 6)]
    assert draws[0] == draws[1] != draws[2]


@pytest.mark.parametrize(
    "sampler", [RandomClipSampler(4, stride=3), UniformSegmentSampler(4, random_offset=True)]
)
def test_random_samplers_never_read_past_last_frame(
    sampler: RandomClipSampler | UniformSegmentSampler,
) -> None:
    rng = rng_of()
    for num_frames in range(10, 40):
        for _ in range(20):
            clip = sampler(num_frames, 30.0, rng)[0]
            assert clip.min() >= 0 and clip.max() < num_frames


def test_center_clip_sampler_centres_the_clip() -> None:
    assert only_clip(
        CenterClipSampler(clip_length=4, stride=2)(num_frames=11, fps=25.0, rng=rng_of())
    ) == [
        2,
        4,
        6,
        8,
    ]


def test_target_fps_derives_stride_from_video_fps() -> None:
    sampler = CenterClipSampler(clip_length=3, stride=1, target_fps=10.0)
    assert only_clip(sampler(num_frames=7, fps=30.0, rng=rng_of())) == [0, 3, 6]


def test_target_fps_above_video_fps_reads_every_frame() -> None:
    assert only_clip(
        CenterClipSampler(clip_length=3, target_fps=60.0)(num_frames=3, fps=25.0, rng=rng_of())
    ) == [
        0,
        1,
        2,
    ]


def test_target_fps_without_known_fps_says_what_to_set() -> None:
    with pytest.raises(DecodeError, match="set clip_sampler.target_fps: null"):
        RandomClipSampler(clip_length=3, target_fps=10.0)(num_frames=30, fps=0.0, rng=rng_of())


def test_short_video_loop_wraps_indices() -> None:
    sampler = CenterClipSampler(clip_length=5, stride=1, short_video="loop")
    assert only_clip(sampler(num_frames=3, fps=30.0, rng=rng_of())) == [0, 1, 2, 0, 1]


def test_short_video_repeat_last_clamps_indices() -> None:
    sampler = RandomClipSampler(clip_length=5, stride=1, short_video="repeat_last")
    assert only_clip(sampler(num_frames=3, fps=30.0, rng=rng_of())) == [0, 1, 2, 2, 2]


def test_short_video_skip_raises_short_video_error() -> None:
    sampler = RandomClipSampler(clip_length=5, stride=2, short_video="skip")
    with pytest.raises(
        ShortVideoError, match="6 frames, but a clip spans 9; use short_video: loop"
    ):
        sampler(num_frames=6, fps=30.0, rng=rng_of())


def test_short_video_error_is_a_decode_error() -> None:
    assert issubclass(ShortVideoError, DecodeError)


def test_video_without_frames_raises_short_video_error() -> None:
    with pytest.raises(ShortVideoError, match="no frames"):
        CenterClipSampler(clip_length=2)(num_frames=0, fps=30.0, rng=rng_of())


def test_uniform_segment_sampler_takes_segment_centres_in_evaluation() -> None:
    assert only_clip(
        UniformSegmentSampler(clip_length=5, random_offset=False)(
            num_frames=10, fps=30.0, rng=rng_of()
        )
    ) == [1, 3, 5, 7, 9]


def test_uniform_segment_sampler_draws_one_frame_inside_each_segment() -> None:
    assert only_clip(
        UniformSegmentSampler(clip_length=4, random_offset=True)(
            num_frames=12, fps=30.0, rng=FixedDraws()
        )
    ) == [2, 5, 8, 11]


def test_uniform_segment_sampler_repeats_frames_of_short_video() -> None:
    assert only_clip(
        UniformSegmentSampler(clip_length=4, random_offset=False)(
            num_frames=2, fps=30.0, rng=rng_of()
        )
    ) == [0, 0, 1, 1]


def test_sliding_windows_default_hop_is_the_clip_span() -> None:
    clips = SlidingWindowSampler(clip_length=2, stride=2)(num_frames=9, fps=30.0, rng=rng_of())
    assert [clip.tolist() for clip in clips] == [[0, 2], [3, 5], [6, 8]]


def test_sliding_windows_add_a_last_window_ending_at_the_final_frame() -> None:
    clips = SlidingWindowSampler(clip_length=4, hop=4)(num_frames=10, fps=30.0, rng=rng_of())
    assert [clip.tolist() for clip in clips] == [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]


def test_sliding_windows_with_hop_one_give_every_start() -> None:
    assert (
        len(SlidingWindowSampler(clip_length=3, hop=1)(num_frames=10, fps=30.0, rng=rng_of())) == 8
    )


@pytest.mark.parametrize("num_frames", range(8, 30))
def test_sliding_windows_cover_every_frame_and_stay_inside(num_frames: int) -> None:
    clips = np.stack(SlidingWindowSampler(clip_length=8, hop=5)(num_frames, fps=30.0, rng=rng_of()))
    assert set(clips.ravel().tolist()) == set(range(num_frames))


def test_sliding_windows_on_short_video_give_one_fitted_clip() -> None:
    clips = SlidingWindowSampler(clip_length=4, short_video="repeat_last")(
        num_frames=2, fps=30.0, rng=rng_of()
    )
    assert [clip.tolist() for clip in clips] == [[0, 1, 1, 1]]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"clip_length": 0}, "clip_length must be >= 1"),
        ({"clip_length": 4, "stride": 0}, "stride must be >= 1"),
        ({"clip_length": 4, "short_video": "pad"}, "short_video must be one of"),
        ({"clip_length": 4, "target_fps": 0}, "target_fps must be > 0"),
    ],
)
def test_invalid_settings_fail_at_construction(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RandomClipSampler(**arguments)


@pytest.mark.parametrize("preset", sorted(path.stem for path in CLIP_SAMPLER_DIR.glob("*.yaml")))
def test_clip_sampler_preset_builds_a_sampler_of_data_frames(preset: str) -> None:
    config = OmegaConf.merge(
        {"data": {"frames": 4}}, {"sampler": OmegaConf.load(CLIP_SAMPLER_DIR / f"{preset}.yaml")}
    )
    clips = instantiate(config.sampler)(num_frames=20, fps=30.0, rng=rng_of())
    assert clips and all(clip.shape == (4,) and clip.max() < 20 for clip in clips)


def test_shuffled_frames_keeps_the_clip_frames_in_another_order() -> None:
    clip = ShuffledFrames(CenterClipSampler(8))(num_frames=20, fps=10.0, rng=rng_of(3))[0]
    assert sorted(clip.tolist()) == list(range(6, 14))
    assert clip.tolist() != list(range(6, 14))
