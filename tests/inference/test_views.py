"""Test-time views: the clips (with the trained clip length and frame spacing) and the crops
each views preset reads."""

import logging

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from vidlearn.cli.config import CONF_DIR
from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler, ShuffledFrames
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.errors import ConfigError
from vidlearn.inference.views import Views, build_views, three_crops

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


def _coordinate_frames(height: int, width: int, frames: int = 2) -> np.ndarray:
    """(T, H, W, 3) float32 frames whose channels hold each pixel's x, y and frame index."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack(
        [np.stack([x, y, np.full_like(x, t)], axis=-1) for t in range(frames)]
    )  # (T, H, W, 3)


@pytest.mark.parametrize(
    ("height", "width", "names", "starts"),
    [
        (8, 20, ("left", "centre", "right"), (0, 6, 12)),  # short side already 8: no resize
        (20, 8, ("top", "centre", "bottom"), (0, 6, 12)),
        (8, 8, ("left", "centre", "right"), (0, 0, 0)),  # square: the three crops coincide
    ],
)
def test_three_crops_lie_at_the_start_centre_and_end_of_the_long_side(
    height: int, width: int, names: tuple[str, ...], starts: tuple[int, ...]
) -> None:
    crops = Views(CenterClipSampler(2), crops=3).crop(_coordinate_frames(height, width), 8)
    assert tuple(name for name, _ in crops) == names
    for (_, crop), start in zip(crops, starts, strict=True):
        assert crop.shape == (2, 8, 8, 3)
        top_left, bottom_right = crop[:, 0, 0], crop[:, -1, -1]  # (T, 3): x, y, frame
        x0, y0 = (start, 0) if width >= height else (0, start)
        assert top_left[:, :2].tolist() == [[x0, y0]] * 2
        assert bottom_right[:, :2].tolist() == [[x0 + 7, y0 + 7]] * 2
        assert top_left[:, 2].tolist() == [0, 1]  # frames stay in order


def test_three_crops_resize_the_short_side_to_the_model_size_keeping_the_aspect() -> None:
    """16 x 40 -> 8 x 20: bilinear halving maps output pixel i to input coordinate 2i + 0.5."""
    crops = three_crops(_coordinate_frames(16, 40), 8)
    for crop, start in zip(crops, (0, 6, 12), strict=True):
        assert crop[0, 0, 0, :2].tolist() == [2 * start + 0.5, 0.5]
        assert crop[0, -1, -1, :2].tolist() == [2 * (start + 7) + 0.5, 14.5]


def test_one_crop_is_the_whole_frame_left_to_the_transform() -> None:
    frames = _coordinate_frames(8, 20)
    [(name, crop)] = Views(CenterClipSampler(2), crops=1).crop(frames, 8)
    assert name == "full" and crop is frames


def test_other_crop_counts_are_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="views.crops"):
        build_views({**_VIEW_CONFIGS["center"], "crops": 5}, PRE)


PRE = {"frames": 4, "stride": 1, "target_fps": None}
_VIEW_CONFIGS = {
    "center": {"_target_": "vidlearn.data.clip_sampling.CenterClipSampler"},
}


def _group_views(*overrides: str) -> Views:
    """The views of conf/views/ as vidlearn-eval composes them, for a 4-frame stride-1 model."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=["ckpt=x", *overrides])
    return build_views(cfg.views, PRE)


@pytest.mark.parametrize(
    ("overrides", "starts"),
    [
        (["views=center"], [8]),  # (20 - 4) // 2
        (["views=uniform"], [0, 4, 8, 12, 16]),  # 5 starts evenly from 0 to 20 - 4
        (["views=uniform", "views.num_clips=3"], [0, 8, 16]),
        (["views=sliding"], [0, 4, 8, 12, 16]),  # windows touch
        (["views=sliding", "views.hop=6"], [0, 6, 12, 16]),  # and one ending at the last frame
        ([], [0, 4, 8, 12, 16]),  # eval's default: sliding
    ],
)
def test_each_views_preset_reads_the_frames_it_states(
    overrides: list[str], starts: list[int]
) -> None:
    views = _group_views(*overrides)
    clips = views.clips(20, 30.0, RNG)
    assert [clip.tolist() for clip in clips] == [list(range(s, s + 4)) for s in starts]
    assert views.crops == 1 and views.centre(20, 30.0, RNG)[0].tolist() == [8, 9, 10, 11]


def test_the_crops_key_of_a_preset_reaches_the_views() -> None:
    assert _group_views("views=uniform", "views.crops=3").crops == 3


def test_the_old_views_override_still_composes() -> None:
    """Commands written before the views group: '~views' '+views={...}'."""
    views = _group_views(
        "~views", "+views={_target_: vidlearn.inference.views.UniformClipsSampler, num_clips: 2}"
    )
    assert [clip[0] for clip in views.clips(20, 30.0, RNG)] == [0, 16]


def test_images_take_the_crops_of_the_views_and_ignore_their_clips() -> None:
    views = build_views({"_target_": "no.such.Sampler", "crops": 3}, {"modality": "image"})
    assert views.crops == 3 and views.clips(1, 0.0, RNG)[0].tolist() == [0]


@pytest.mark.parametrize(
    "config",
    [None, {"_target_": "vidlearn.inference.views.UniformClipsSampler", "num_clips": 5}],
    ids=["sliding", "uniform"],
)
def test_a_model_trained_on_segments_is_viewed_on_its_segments(config: dict | None) -> None:
    """A TSN model (frames spread over the whole video) was scored on windows of consecutive
    frames, another input than it was trained and tested on (before the fix: a warning only);
    the crops still come from the views."""
    pre = {"frames": 4, "stride": 1, "clip_sampler": "UniformSegmentSampler"}
    views = build_views(None if config is None else {**config, "crops": 3}, pre)
    assert [clip.tolist() for clip in views.clips(40, 0.0, RNG)] == [[5, 15, 25, 35]]
    assert views.crops == (1 if config is None else 3)


def test_a_views_option_the_sampler_lacks_is_a_config_error_naming_the_key() -> None:
    """e.g. `experiment=finetune_swin3d_t views=center`: the preset's views.num_clips stays behind.
    Before the fix it was a TypeError from inside Hydra's instantiate, shown as a vidlearn bug."""
    config = {"_target_": "vidlearn.data.clip_sampling.CenterClipSampler", "num_clips": 4}
    with pytest.raises(ConfigError, match=r"views\.num_clips is not an option.*views=uniform"):
        build_views(config, {"frames": 8, "stride": 1})
