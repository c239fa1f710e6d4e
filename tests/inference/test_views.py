"""Test-time views take the clip length and frame spacing the model was trained with."""

import logging

import numpy as np
import pytest

from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler, ShuffledFrames
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.inference.views import build_views

RNG = np.random.default_rng(0)


def test_the_checkpoint_records_the_training_clip_spacing() -> None:
    datamodule = VideoDataModule(
        label_kind="multiclass",
        manifest="m.csv",
        frames=4,
        train_clip_sampler=ShuffledFrames(RandomClipSampler(4, stride=1, target_fps=10)),
        eval_clip_sampler=CenterClipSampler(4),
    )
    pre = datamodule.preprocessing()
    assert (pre["clip_sampler"], pre["stride"], pre["target_fps"]) == ("RandomClipSampler", 1, 10)


def test_sliding_views_follow_the_trained_target_fps() -> None:
    views = build_views(None, {"frames": 4, "stride": 1, "target_fps": 10})
    clips = views.clips(40, 30.0, RNG)  # 30 fps down to 10: every 3rd frame
    assert clips[0].tolist() == [0, 3, 6, 9] and clips[-1].tolist() == [30, 33, 36, 39]


def test_a_configured_view_sampler_gets_the_trained_stride() -> None:
    config = {"_target_": "vidlearn.inference.views.UniformClipsSampler", "num_clips": 2}
    clips = build_views(config, {"frames": 4, "stride": 3, "target_fps": None}).clips(16, 0.0, RNG)
    assert [clip.tolist() for clip in clips] == [[0, 3, 6, 9], [6, 9, 12, 15]]


def test_a_stride_set_in_the_views_config_wins() -> None:
    config = {"_target_": "vidlearn.data.clip_sampling.CenterClipSampler", "stride": 1}
    clips = build_views(config, {"frames": 4, "stride": 3, "target_fps": None}).clips(16, 0.0, RNG)
    assert clips[0].tolist() == [6, 7, 8, 9]


def test_a_stride_set_in_the_views_config_wins_over_a_trained_target_fps() -> None:
    """The trained target_fps was passed beside the configured stride and overrode it."""
    config = {"_target_": "vidlearn.data.clip_sampling.CenterClipSampler", "stride": 1}
    clips = build_views(config, {"frames": 4, "stride": 1, "target_fps": 10}).clips(16, 30.0, RNG)
    assert clips[0].tolist() == [6, 7, 8, 9]


def test_an_older_checkpoint_reads_consecutive_frames_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        clips = build_views(None, {"frames": 4}).clips(8, 0.0, RNG)
    assert [clip.tolist() for clip in clips] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert "does not record the frame spacing" in caplog.text
