"""Each model states the clips it takes (`input_limits`), and the stated limits are the true ones:
the smallest stated clip runs a training step, one frame or pixel less fails."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidlearn.models.backbones import SmallCNN
from vidlearn.models.cnn3d import Video3DCNN
from vidlearn.models.frame_gru import FrameGRU
from vidlearn.models.hms_cnn_rnn import HmsCnnRnn
from vidlearn.models.limits import InputLimits
from vidlearn.models.mobilenet_v2 import MobileNetV2Classifier


def train_step(model: nn.Module, frames: int, size: int, channels: int = 3) -> None:
    """Forward and backward on a batch of two clips (B, T, C, H, W)."""
    model.train()
    model(torch.randn(2, frames, channels, size, size)).sum().backward()


def test_limits_within_bounds_have_no_problems() -> None:
    assert InputLimits("model=x", min_frames=5, min_size=17).problems(5, 17) == []


def test_a_short_clip_names_the_minimum_and_the_data_keys() -> None:
    (problem,) = InputLimits("model=x", min_frames=5, hint="or pick model=y").problems(4, 64)
    assert problem == (
        "model=x needs data.frames >= 5 at data.size=64 (got data.frames=4); raise data.frames "
        "or pick model=y"
    )


def test_a_fixed_clip_length_names_model_num_frames_and_data_frames() -> None:
    (problem,) = InputLimits("model=x", frames=25).problems(8, 64)
    assert "model.num_frames=25" in problem and "data.frames=8" in problem


def test_image_models_have_no_clip_length_to_check() -> None:
    assert InputLimits("model=x", min_frames=5).problems(None, 64) == []


def test_s3d_states_six_frames_and_seventeen_pixels() -> None:
    limits = Video3DCNN(num_outputs=2, arch="s3d", weights="none").input_limits
    assert (limits.min_frames, limits.min_size) == (6, 17)


def test_s3d_trains_at_its_stated_minimum() -> None:
    train_step(Video3DCNN(num_outputs=2, arch="s3d", weights="none"), frames=6, size=17)


# Not 5 frames: there the forward runs and the backward crashes the process (see cnn3d.LIMITS).
@pytest.mark.parametrize(("frames", "size"), [(4, 64), (8, 16)])
def test_s3d_fails_below_its_stated_minimum(frames: int, size: int) -> None:
    with pytest.raises(RuntimeError, match="too small"):
        train_step(Video3DCNN(num_outputs=2, arch="s3d", weights="none"), frames, size)


@pytest.mark.parametrize("arch", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_resnet_3d_cnns_state_no_minimum_and_take_a_single_tiny_frame(arch: str) -> None:
    model = Video3DCNN(num_outputs=2, arch=arch, weights="none")
    assert (model.input_limits.min_frames, model.input_limits.min_size) == (1, 1)
    train_step(model, frames=1, size=1)


def test_grey_3d_cnn_sums_the_rgb_stem_kernels() -> None:
    torch.manual_seed(0)
    rgb = Video3DCNN(num_outputs=2, arch="r3d_18", weights="none").eval()
    torch.manual_seed(0)
    grey = Video3DCNN(num_outputs=2, arch="r3d_18", weights="none", in_channels=1).eval()
    clip = torch.rand(1, 4, 1, 16, 16)  # (B, T, C, H, W)
    with torch.no_grad():
        torch.testing.assert_close(grey(clip), rgb(clip.expand(-1, -1, 3, -1, -1)))


def test_hms_cnn_rnn_states_its_fixed_clip_length_and_size() -> None:
    limits = HmsCnnRnn(num_outputs=1, num_frames=8, size=64).input_limits
    assert (limits.frames, limits.size, limits.min_size) == (8, 64, 63)
    assert limits.problems(8, 64) == []
    assert len(limits.problems(25, 150)) == 2


def test_frame_gru_takes_its_minimum_size_from_the_small_cnn() -> None:
    model = FrameGRU(num_outputs=2, backbone=SmallCNN(widths=(4, 4, 4)))
    assert model.input_limits.min_size == 8
    train_step(model, frames=2, size=8)
    with pytest.raises(RuntimeError):
        train_step(model, frames=2, size=7)


def test_mobilenet_v2_states_no_minimum_and_trains_on_a_single_pixel() -> None:
    model = MobileNetV2Classifier(num_outputs=2, weights="none", freeze=0).train()
    assert model.input_limits.problems(None, 1) == []
    model(torch.randn(2, 3, 1, 1)).sum().backward()  # (B, C, H, W)
