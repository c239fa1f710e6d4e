"""Channel counts are read from the files before training; data.mean/std are fitted to them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidlearn.data.channels import fit_statistics, resolve_channels, video_channels
from vidlearn.data.clip_sampling import CenterClipSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.errors import ConfigError, UserError


def save_array(path: Path, shape: tuple[int, ...]) -> str:
    np.save(path, np.zeros(shape, dtype=np.uint8))
    return str(path)


def read(path: str) -> int:
    return video_channels(path, "decord")


def test_grey_arrays_have_one_channel(tmp_path: Path) -> None:
    assert read(save_array(tmp_path / "grey.npy", (4, 8, 8))) == 1


def test_multi_view_arrays_have_one_channel_per_view(tmp_path: Path) -> None:
    assert read(save_array(tmp_path / "views.npy", (4, 8, 8, 2))) == 2


def test_videos_are_rgb_without_being_opened(broken_files: dict[str, Path]) -> None:
    assert read(str(broken_files["random_bytes"])) == 3  # the decoder reports a bad video later


def test_unreadable_arrays_are_passed_over(tmp_path: Path, broken_files: dict[str, Path]) -> None:
    grey = save_array(tmp_path / "grey.npy", (4, 8, 8))
    paths = [str(broken_files["corrupt_npy"]), str(tmp_path / "missing.npy"), grey]
    assert resolve_channels(None, paths, read) == (1, grey)


def test_a_data_channels_that_disagrees_with_the_files_is_refused(tmp_path: Path) -> None:
    grey = save_array(tmp_path / "grey.npy", (4, 8, 8))
    with pytest.raises(ConfigError, match=r"data.channels=3 but \S+grey.npy has 1 channel"):
        resolve_channels(3, [grey], read)


def test_no_readable_array_is_reported_with_every_reason(
    tmp_path: Path, broken_files: dict[str, Path]
) -> None:
    paths = [str(broken_files["corrupt_npy"]), str(tmp_path / "missing.npy")]
    with pytest.raises(UserError, match="first 2 training file") as error:
        resolve_channels(None, paths, read)
    assert "corrupt.npy" in str(error.value) and "missing.npy: file not found" in str(error.value)


def test_one_mean_and_std_value_serves_every_channel() -> None:
    assert fit_statistics([0.5], [0.25], 3, "a.mp4") == ([0.5] * 3, [0.25] * 3)


def test_per_channel_statistics_are_kept() -> None:
    assert fit_statistics([0.1, 0.2], [0.3, 0.4], 2, "a.npy") == ([0.1, 0.2], [0.3, 0.4])


def test_rgb_statistics_for_grey_frames_name_both_keys_and_the_file() -> None:
    with pytest.raises(ConfigError) as error:
        fit_statistics([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 1, "cine/a.npy")
    message = str(error.value)
    assert "cine/a.npy has 1 channel(s)" in message
    assert "data.mean has 3 values" in message and "data.std has 3 values" in message


def test_pretrained_rgb_statistics_for_grey_arrays_are_averaged(tmp_path: Path) -> None:
    """Grey frames feed a pretrained RGB stem as grey repeated in every channel (summed kernels),
    so they take one mean and one std: the averages of the weights' three values."""
    rows = [
        f"{save_array(tmp_path / f'a{i}.npy', (4, 8, 8))},{label}" for i, label in enumerate("abab")
    ]
    (tmp_path / "m.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    datamodule = VideoDataModule(
        label_kind="multiclass",
        manifest=str(tmp_path / "m.csv"),
        frames=4,
        size=8,
        num_workers=0,
        probe=False,
        val_fraction=0.25,
        test_fraction=0.0,
        weights_statistics=((0.4, 0.5, 0.6), (0.1, 0.2, 0.3)),
        train_clip_sampler=CenterClipSampler(4),
        eval_clip_sampler=CenterClipSampler(4),
    )
    datamodule.setup("fit")
    assert datamodule.mean == pytest.approx([0.5]) and datamodule.std == pytest.approx([0.2])


def array_datamodule(folder: Path, dtype: str, peak: int, **options: object) -> VideoDataModule:
    rows = []
    for i, label in enumerate("abab"):
        np.save(folder / f"a{i}.npy", np.full((4, 8, 8), peak, dtype=dtype))
        rows.append(f"a{i}.npy,{label}")
    (folder / "m.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    return VideoDataModule(
        label_kind="multiclass",
        manifest=str(folder / "m.csv"),
        frames=4,
        size=8,
        num_workers=0,
        probe=False,
        val_fraction=0.25,
        test_fraction=0.0,
        train_clip_sampler=CenterClipSampler(4),
        eval_clip_sampler=CenterClipSampler(4),
        **options,
    )


@pytest.mark.parametrize("dtype", ["int16", "uint16", "int32"])
def test_integer_arrays_in_pixel_units_without_per_frame_max_norm_are_refused(
    tmp_path: Path, dtype: str
) -> None:
    # they were read as float in [0, 1]: a 4095 pixel reached the model as about 16000
    datamodule = array_datamodule(tmp_path, dtype, 4095)
    with pytest.raises(ConfigError, match=rf"a0.npy.*{dtype}.*4095.*data.per_frame_max_norm=true"):
        datamodule.setup("fit")


@pytest.mark.parametrize("dtype", ["uint8", "int16", "bool"])
def test_arrays_with_a_known_scale_are_accepted(tmp_path: Path, dtype: str) -> None:
    datamodule = array_datamodule(tmp_path, dtype, 200 if dtype == "uint8" else 1)
    datamodule.setup("fit")
    assert datamodule.datasets["train"][0]["input"].abs().max() < 10


def test_integer_arrays_in_pixel_units_are_read_with_per_frame_max_norm(tmp_path: Path) -> None:
    datamodule = array_datamodule(tmp_path, "uint16", 4095, per_frame_max_norm=True)
    datamodule.setup("fit")
    assert datamodule.datasets["train"][0]["input"].abs().max() < 10


def test_an_array_with_another_channel_count_than_the_data_set_is_skipped_naming_it(
    tmp_path: Path,
) -> None:
    # a (T, H, W, 2) array among grey ones failed in collate: "stack expects each tensor
    # to be equal size", naming no file
    datamodule = array_datamodule(tmp_path, "uint8", 7, max_bad_fraction=0.5)
    np.save(tmp_path / "a1.npy", np.zeros((4, 8, 8, 2), dtype=np.uint8))
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    odd = dataset.paths.index(str(tmp_path / "a1.npy"))
    item = dataset[odd]
    assert item["index"] != odd and item["input"].shape[1] == 1
    assert [record.path for record in item["skipped"]] == [str(tmp_path / "a1.npy")]
    assert (
        "2 channel(s)" in item["skipped"][0].reason and "data.channels" in item["skipped"][0].reason
    )
