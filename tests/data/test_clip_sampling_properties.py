"""Properties of every clip and view sampler over any frame count, fps, clip length and stride:
the promised number of clips and frames, every index inside the video (vidlearn issue 20, A)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vidlearn.data.clip_sampling import (
    CenterClipSampler,
    RandomClipSampler,
    ShortVideoError,
    ShuffledFrames,
    SlidingWindowSampler,
    UniformSegmentSampler,
)
from vidlearn.data.video import DecodeError
from vidlearn.inference.views import UniformClipsSampler

num_frames = st.integers(1, 300)
clip_lengths = st.integers(1, 40)
strides = st.integers(1, 8)
rates = st.one_of(st.just(0.0), st.floats(1.0, 120.0))  # 0: a container without a frame rate
target_rates = st.one_of(st.none(), st.floats(1.0, 60.0))
modes = st.sampled_from(["loop", "repeat_last", "skip"])
generators = st.integers(0, 2**32 - 1).map(np.random.default_rng)


def assert_clips(clips: list[np.ndarray], count: int | None, length: int, frames: int) -> None:
    """`count` clips (any number if None) of `length` int64 indices in [0, frames)."""
    assert count is None or len(clips) == count
    assert len(clips) >= 1
    for clip in clips:
        assert clip.dtype == np.int64 and clip.shape == (length,)
        assert clip.min() >= 0 and clip.max() < frames


@pytest.mark.parametrize("sampler_class", [RandomClipSampler, CenterClipSampler])
@given(num_frames, rates, clip_lengths, strides, target_rates, modes, generators)
@example(3, 25.0, 10, 1, None, "loop", np.random.default_rng(0))  # shorter than the clip
@example(3, 25.0, 4, 2, None, "repeat_last", np.random.default_rng(0))
def test_a_consecutive_clip_sampler_gives_one_clip_of_its_length_inside_the_video(
    sampler_class: type,
    frames: int,
    fps: float,
    length: int,
    stride: int,
    target_fps: float | None,
    short_video: str,
    rng: np.random.Generator,
) -> None:
    """One clip of `clip_length` indices in [0, num_frames), `step` apart while it fits; a
    video shorter than the span is looped, held on its last frame, or refused (skip); an
    unknown frame rate with target_fps is a DecodeError.

    Caught (planted): `rng.integers(0, num_frames - span, endpoint=True)` without the
    `max(.., 0)` fails on short videos; `max(1, round(..))` dropped lets target_fps above the
    video's rate give a stride of 0.
    """
    sampler = sampler_class(length, stride, target_fps, short_video)
    if target_fps is not None and fps <= 0:
        with pytest.raises(DecodeError, match="frame rate unknown"):
            sampler(frames, fps, rng)
        return
    step = stride if target_fps is None else max(1, round(fps / target_fps))
    span = (length - 1) * step + 1
    if span > frames and short_video == "skip":
        with pytest.raises(ShortVideoError, match=f"{frames} frames, but a clip spans {span}"):
            sampler(frames, fps, rng)
        return
    (clip,) = sampler(frames, fps, rng)
    assert_clips([clip], 1, length, frames)
    if span <= frames:
        assert np.all(np.diff(clip) == step)
    elif short_video == "repeat_last":
        assert np.all(np.diff(clip) >= 0) and clip[-1] == frames - 1


@given(num_frames, clip_lengths, st.booleans(), generators)
def test_uniform_segments_take_one_frame_from_each_segment_in_order(
    frames: int, length: int, random_offset: bool, rng: np.random.Generator
) -> None:
    """`clip_length` indices, index k inside segment k: floor(k*n/L) <= i_k < (k+1)*n/L, so
    they never decrease and stay below n.

    Caught (planted): an evaluation offset of 1.0 instead of 0.5 (each segment's end, which is
    the next segment's first frame).
    """
    (clip,) = UniformSegmentSampler(length, random_offset)(frames, 25.0, rng)
    assert_clips([clip], 1, length, frames)
    segments = np.arange(length)
    assert np.all(clip >= segments * frames // length)
    assert np.all(clip * length < (segments + 1) * frames)
    assert np.all(np.diff(clip) >= 0)


@given(num_frames, clip_lengths, strides, st.one_of(st.none(), st.integers(1, 50)), modes)
def test_sliding_windows_cover_the_video_up_to_its_last_frame(
    frames: int, length: int, stride: int, hop: int | None, short_video: str
) -> None:
    """Windows of `clip_length` indices `stride` apart, starts `hop` apart; the last window
    ends on the last frame and, with hop <= span, the windows' spans cover every frame.

    Caught (planted): without the added final window (`starts.append(..)`), the frames after
    the last hop are never seen.
    """
    sampler = SlidingWindowSampler(length, stride, hop, short_video)
    span = (length - 1) * stride + 1
    if span > frames and short_video == "skip":
        with pytest.raises(ShortVideoError):
            sampler(frames, 25.0, np.random.default_rng(0))
        return
    clips = sampler(frames, 25.0, np.random.default_rng(0))
    assert_clips(clips, None, length, frames)
    if span <= frames:
        assert clips[-1][-1] == frames - 1
        if sampler.hop <= span:
            covered = np.zeros(frames, dtype=bool)
            for clip in clips:
                covered[clip[0] : clip[-1] + 1] = True
            assert covered.all()


@given(num_frames, clip_lengths, st.integers(1, 12), strides, generators)
def test_uniform_views_give_at_most_num_clips_distinct_clips_inside_the_video(
    frames: int, length: int, num_clips: int, stride: int, rng: np.random.Generator
) -> None:
    """At most `num_clips` clips, no two alike, each `clip_length` indices inside the video,
    the first starting at frame 0 and, with two or more clips asked for, the last ending at
    the last frame when the video is long enough (one clip starts at frame 0).

    Caught (planted): starts spread over `num_frames` instead of `num_frames - span` run past
    the end (then wrapped: the last clip no longer ends on the last frame).
    """
    clips = UniformClipsSampler(length, num_clips, stride)(frames, 25.0, rng)
    assert_clips(clips, None, length, frames)
    assert len(clips) <= num_clips
    assert len({tuple(clip) for clip in clips}) == len(clips)
    assert clips[0][0] == 0
    if (length - 1) * stride + 1 <= frames and num_clips >= 2:
        assert clips[-1][-1] == frames - 1


@given(num_frames, clip_lengths, strides, generators)
def test_shuffled_frames_reorder_the_wrapped_sampler_s_clip(
    frames: int, length: int, stride: int, rng: np.random.Generator
) -> None:
    """The same indices as the wrapped sampler's clip, in some order.

    Caught (planted): `rng.choice(clip, len(clip))` (with replacement) repeats and loses frames.
    """
    inner = CenterClipSampler(length, stride)
    (shuffled,) = ShuffledFrames(inner)(frames, 25.0, rng)
    (ordered,) = inner(frames, 25.0, rng)
    assert_clips([shuffled], 1, length, frames)
    np.testing.assert_array_equal(np.sort(shuffled), np.sort(ordered))
