"""Multi-view prediction: each file's scores are the mean of its views' class probabilities
(clips x crops), and the single view (centre clip, centre crop) is scored beside them."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from counter_videos import write_video
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from vidlearn.data.frame_cache import FrameCache
from vidlearn.data.transforms import ClipTransform, ImageTransform
from vidlearn.inference.checkpoint import LoadedModel
from vidlearn.inference.predictor import predict_files
from vidlearn.inference.views import build_views, three_crops

SIZE, FRAMES = 6, 3
PRE = {"size": SIZE, "mean": [0.5], "std": [0.25], "frames": FRAMES, "stride": 1}
UNIFORM = "vidlearn.inference.views.UniformClipsSampler"
SLIDING = "vidlearn.data.clip_sampling.SlidingWindowSampler"


class CornerLogits(nn.Module):
    """(B, [T,] C, H, W) -> (B, 3): non-linear in the input and sensitive to where a crop lies
    (its top-left pixel), so averaging logits or mixing up views changes the result."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)  # only read for the channel count

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        mean = inputs.flatten(1).mean(dim=1)  # (B,)
        corner = inputs[..., 0, 0].flatten(1).mean(dim=1)  # (B,)
        return torch.stack([3 * mean, 5 * corner, -mean * corner], dim=1)


def _loaded(modality: str = "video") -> LoadedModel:
    return LoadedModel(
        Path("x.ckpt"), CornerLogits(), "multiclass", ["a", "b", "c"], {**PRE, "modality": modality}
    )


def _one_by_one(video: np.ndarray, clips: list[np.ndarray], crops: int) -> np.ndarray:
    """(views, 3) probabilities of each view, each scored alone, clip-major then crop order."""
    transform, model = ClipTransform([], SIZE, PRE["mean"], PRE["std"]), CornerLogits()
    scores = []
    for clip in clips:
        frames = video[clip]
        for crop in [frames] if crops == 1 else three_crops(frames, SIZE):
            with torch.no_grad():
                scores.append(model(transform(crop)[None]).softmax(dim=-1)[0].numpy())
    return np.stack(scores)


@settings(max_examples=15, deadline=None)
@given(
    num_frames=st.integers(1, 20),
    shape=st.sampled_from([(8, 13), (13, 8), (9, 9)]),
    sampler=st.sampled_from(["uniform", "sliding"]),
    num_clips=st.integers(1, 4),
    hop=st.none() | st.integers(1, 5),
    crops=st.sampled_from([1, 3]),
    batch_size=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_the_multi_view_prediction_is_the_mean_of_its_views_scored_one_by_one(
    num_frames: int,
    shape: tuple[int, int],
    sampler: str,
    num_clips: int,
    hop: int | None,
    crops: int,
    batch_size: int,
    seed: int,
) -> None:
    """Caught planted bugs: logits averaged instead of probabilities; the last clip of each
    file left out of the views; the crops of every clip cut from the first clip's frames."""
    video = np.random.default_rng(seed).integers(0, 256, (num_frames, *shape, 3), dtype=np.uint8)
    config = (
        {"_target_": UNIFORM, "num_clips": num_clips}
        if sampler == "uniform"
        else {
            "_target_": SLIDING,
            "hop": hop,
        }
    )
    views = build_views({**config, "crops": crops}, PRE)
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "v.npy", video)
        predictions = predict_files(
            _loaded(), [Path(folder) / "v.npy"], views, batch_size, progress=False
        )
    expected = _one_by_one(video, views.clips(num_frames, 0.0, np.random.default_rng(0)), crops)
    windows = predictions.windows
    assert windows[["a", "b", "c"]].to_numpy() == pytest.approx(expected, abs=1e-6)
    assert predictions.files.loc[0, ["a", "b", "c"]].to_numpy(float) == pytest.approx(
        expected.mean(axis=0), abs=1e-6
    )
    assert predictions.files.loc[0, "views"] == len(expected) == windows["averaged"].sum()


def _video(tmp_path: Path, num_frames: int) -> tuple[Path, np.ndarray]:
    video = np.random.default_rng(0).integers(0, 256, (num_frames, 8, 12, 3), dtype=np.uint8)
    np.save(tmp_path / "v.npy", video)
    return tmp_path / "v.npy", video


def test_the_single_view_is_the_centre_clip_centre_crop_already_among_the_views(
    tmp_path: Path,
) -> None:
    path, video = _video(tmp_path, 11)  # uniform 3 clips of 3 frames: starts 0, 4, 8
    views = build_views({"_target_": UNIFORM, "num_clips": 3, "crops": 3}, PRE)
    predictions = predict_files(_loaded(), [path], views, progress=False, single_view=True)
    windows = predictions.windows
    assert len(windows) == 9 and windows["averaged"].all()  # no view scored twice
    [single] = windows.index[windows["single_view"]]
    assert windows.loc[single, ["window", "crop", "start_frame"]].tolist() == [1, "centre", 4]
    expected = _one_by_one(video, [np.arange(4, 7)], 3)[1]  # the centre crop of frames 4-6
    assert predictions.single_view_files().loc[0, ["a", "b", "c"]].to_numpy(float) == (
        pytest.approx(expected, abs=1e-6)
    )


def test_a_centre_clip_outside_the_views_is_scored_once_more_and_not_averaged(
    tmp_path: Path,
) -> None:
    path, video = _video(tmp_path, 10)  # the centre clip of 3 frames starts at 3
    views = build_views({"_target_": SLIDING, "hop": 2, "crops": 1}, PRE)  # 0, 2, 4, 6, 7
    predictions = predict_files(_loaded(), [path], views, progress=False, single_view=True)
    windows = predictions.windows
    extra = windows[~windows["averaged"]]
    assert extra["start_frame"].tolist() == [3] and extra["single_view"].tolist() == [True]
    assert extra[["a", "b", "c"]].to_numpy() == pytest.approx(
        _one_by_one(video, [np.arange(3, 6)], 1), abs=1e-6
    )
    averaged = windows[windows["averaged"]]
    assert averaged["start_frame"].tolist() == [0, 2, 4, 6, 7]
    assert predictions.files.loc[0, ["a", "b", "c"]].to_numpy(float) == pytest.approx(
        averaged[["a", "b", "c"]].mean().to_numpy(), abs=1e-6
    )


def test_predict_marks_no_single_view(tmp_path: Path) -> None:
    path, _ = _video(tmp_path, 10)
    views = build_views({"_target_": SLIDING, "hop": 2, "crops": 1}, PRE)
    windows = predict_files(_loaded(), [path], views, progress=False).windows
    assert windows["averaged"].all() and not windows["single_view"].any()


def test_an_image_gives_three_crops_averaged_and_the_centre_one_as_single_view(
    tmp_path: Path,
) -> None:
    image = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "i.png")
    views = build_views({"_target_": UNIFORM, "crops": 3}, {"modality": "image"})
    predictions = predict_files(
        _loaded("image"), [tmp_path / "i.png"], views, progress=False, single_view=True
    )
    windows = predictions.windows
    assert windows["crop"].tolist() == ["left", "centre", "right"]
    assert windows["single_view"].tolist() == [False, True, False]
    transform = ImageTransform([], SIZE, PRE["mean"], PRE["std"])
    with torch.no_grad():
        expected = np.stack(
            [
                CornerLogits()(transform(crop)[None]).softmax(dim=-1)[0].numpy()
                for crop in three_crops(image, SIZE)
            ]
        )
    assert windows[["a", "b", "c"]].to_numpy() == pytest.approx(expected, abs=1e-6)
    assert predictions.files.loc[0, ["a", "b", "c"]].to_numpy(float) == pytest.approx(
        expected.mean(axis=0), abs=1e-6
    )


@pytest.mark.parametrize(("crops", "cached"), [(1, True), (3, False)])
def test_three_crops_decode_without_the_frame_cache_which_holds_squashed_frames(
    demo_videos: Path, tmp_path: Path, crops: int, cached: bool
) -> None:
    video = demo_videos.parent / pd.read_csv(demo_videos)["path"][0]
    views = build_views({"_target_": UNIFORM, "num_clips": 2, "crops": crops}, PRE)
    cache = FrameCache(tmp_path / "cache", SIZE, "pyav")
    loaded = _loaded()
    loaded.preprocessing["backend"] = "pyav"
    with_cache = predict_files(loaded, [video], views, progress=False, frame_cache=cache)
    without = predict_files(loaded, [video], views, progress=False)
    assert any((tmp_path / "cache").glob("*.frames")) == cached
    if not cached:
        assert with_cache.windows.equals(without.windows)


class LargestInput(nn.Module):
    """(B, T, C, H, W) -> (B, 1): the largest model input, to read what normalisation gave."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)  # only read for the channel count

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.flatten(1).amax(dim=1, keepdim=True)


def test_three_crops_divide_by_the_whole_frames_peaks_as_training_did(tmp_path: Path) -> None:
    """Training reads each frame's peak from the whole frame; a crop away from the brightest
    pixels is divided by that peak too, not by its own (which would brighten it to 1).
    Failed before the fix: the right crop of a frame bright only on its left read 1.0."""
    video = np.full((FRAMES, 6, 18, 1), 50, dtype=np.uint8)
    video[:, :, :2] = 200  # bright only at the left edge
    np.save(tmp_path / "v.npy", video)
    pre = {**PRE, "mean": [0.0], "std": [1.0], "per_frame_max_norm": True}
    model = LoadedModel(
        Path("x.ckpt"), LargestInput(), "regression", [], {**pre, "modality": "video"}
    )
    views = build_views({"_target_": UNIFORM, "num_clips": 1, "crops": 3}, pre)
    windows = predict_files(model, [tmp_path / "v.npy"], views, progress=False).windows
    assert windows.set_index("crop")["prediction"].to_dict() == pytest.approx(
        {"left": 1.0, "centre": 0.25, "right": 0.25}
    )


def test_a_video_too_short_to_skip_is_reported_by_its_path(tmp_path: Path) -> None:
    """The sampler's ShortVideoError does not know the file: the warning read "cannot read 1
    frames, but a clip spans 3" (before the fix), naming no file."""
    path, _ = _video(tmp_path, 1)
    views = build_views({"_target_": UNIFORM, "short_video": "skip", "crops": 1}, PRE)
    files = predict_files(_loaded(), [path], views, progress=False).files
    assert files.loc[0, "error"].startswith(f"{path}: 1 frames, but a clip spans 3")


SAMPLERS = {
    "center": {"_target_": "vidlearn.data.clip_sampling.CenterClipSampler"},
    "uniform": {"_target_": UNIFORM},
    "sliding": {"_target_": SLIDING},
}


@settings(max_examples=20, deadline=None)
@given(
    sampler=st.sampled_from(sorted(SAMPLERS)),
    short_video=st.sampled_from(["loop", "repeat_last", "skip"]),
    crops=st.sampled_from([1, 3]),
    label_kind=st.sampled_from(["multiclass", "binary", "regression"]),
    max_norm=st.booleans(),
    shapes=st.lists(
        st.tuples(st.integers(1, 8), st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=3
    ),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
)
def test_every_file_is_scored_on_clips_times_crops_views_or_reported(
    sampler: str,
    short_video: str,
    crops: int,
    label_kind: str,
    max_norm: bool,
    shapes: list[tuple[int, int, int]],
    dtype: type,
) -> None:
    """Any videos (1 frame, shorter than a clip, 1 pixel wide, black, uint16 or float) under any
    views preset and task: each file is either reported unreadable (only when too short to
    skip) or averaged over windows x crops views, one of which is its single view.
    Caught (planted): three crops cut as two (left and centre only)."""
    classes = {"multiclass": ["a", "b", "c"], "binary": ["n", "p"], "regression": []}
    pre = {**PRE, "channels": 3, "modality": "video", "per_frame_max_norm": max_norm}
    model = LoadedModel(Path("x.ckpt"), CornerLogits(), label_kind, classes[label_kind], pre)
    config = {**SAMPLERS[sampler], "short_video": short_video, "crops": crops}
    views = build_views(config, pre)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"{index}.npy" for index in range(len(shapes))]
        for path, (frames, height, width) in zip(paths, shapes, strict=True):
            np.save(path, np.full((frames, height, width, 3), 7, dtype=dtype))
        predictions = predict_files(model, paths, views, 4, progress=False, single_view=True)
    names = predictions.score_names
    for index, file in predictions.files.iterrows():
        views_of_file = predictions.windows[predictions.windows["file"] == index]
        if file["error"]:
            assert short_video == "skip" and shapes[index][0] < FRAMES
            continue
        averaged = views_of_file[views_of_file["averaged"]]
        assert file["views"] == len(averaged) == file["windows"] * crops
        assert file[names].to_numpy(float) == pytest.approx(averaged[names].mean().to_numpy())
        assert views_of_file["single_view"].sum() == 1


def test_sliding_windows_through_the_frame_cache_store_the_video_once_not_once_per_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caught, before the fix: each window past the stored prefix rewrote the whole entry (the
    prefix copied again), 13 writes here and a quadratic number of bytes on a long video."""
    frames = np.random.default_rng(0).integers(0, 256, (40, 8, 12, 3), dtype=np.uint8)
    video = write_video(tmp_path / "v.mp4", frames)
    cache = FrameCache(tmp_path / "cache", SIZE, "pyav")
    writes: list[int] = []
    write = FrameCache._write

    def counted(self: FrameCache, *args: object) -> object:
        writes.append(args[4])  # stop: the prefix length written
        return write(self, *args)

    monkeypatch.setattr(FrameCache, "_write", counted)
    loaded = _loaded()
    loaded.preprocessing["backend"] = "pyav"
    views = build_views({"_target_": SLIDING, "stride": 1}, PRE)
    with_cache = predict_files(loaded, [video], views, progress=False, frame_cache=cache)
    without = predict_files(loaded, [video], views, progress=False)
    assert len(with_cache.windows) > 1 and len(writes) == 1
    assert with_cache.windows.equals(without.windows)


def test_per_frame_max_norm_reads_each_frames_peak_from_the_whole_frame_with_the_frame_cache(
    tmp_path: Path,
) -> None:
    """The cache holds frames already resized, whose peaks are lower than the decoded frames'
    (a bright pixel averaged away). Caught, before the fix: the cached prediction read a peak
    of the resized frame (largest input 1.0, not 200 / 255 of the whole frame's)."""
    frames = np.full((8, 24, 24, 3), 50, dtype=np.uint8)
    frames[:, 5, 5] = 250  # one bright pixel, averaged away by the resize to 6x6
    video = write_video(tmp_path / "v.mp4", frames)
    pre = {**PRE, "mean": [0.0] * 3, "std": [1.0] * 3, "per_frame_max_norm": True}
    model = LoadedModel(
        Path("x.ckpt"), LargestInput(), "regression", [], {**pre, "modality": "video"}
    )
    model.preprocessing["backend"] = "pyav"
    views = build_views({"_target_": UNIFORM, "num_clips": 1}, pre)
    cache = FrameCache(tmp_path / "cache", SIZE, "pyav")
    with_cache = predict_files(model, [video], views, progress=False, frame_cache=cache)
    without = predict_files(model, [video], views, progress=False)
    assert with_cache.windows.equals(without.windows)
