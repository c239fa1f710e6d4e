"""torchvision's video transformers as vidlearn models: the clips they take, their weights, their
stem and their stochastic depth."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn
from torchvision.models import get_model
from torchvision.models.video import Swin3D_B_Weights
from torchvision.ops import StochasticDepth

from vidlearn.errors import ConfigError
from vidlearn.models.video_transformers import ARCHS, LIMITS, VideoTransformer, set_drop_path
from vidlearn.models.weights import WeightsDownloadError, preprocessing_of

SWIN = ["swin3d_t", "swin3d_s", "swin3d_b"]
MVIT = ["mvit_v1_b", "mvit_v2_s"]
# Building and stepping the larger archs takes well over the few seconds of the default run.
SLOW_SWIN = [*SWIN[:1], *(pytest.param(arch, marks=pytest.mark.slow) for arch in SWIN[1:])]


def train_step(model: VideoTransformer, frames: int, size: int, batch_size: int = 2) -> Tensor:
    """Forward and backward on a batch of random clips (B, T, C, H, W); returns the logits."""
    model.train()
    logits = model(torch.randn(batch_size, frames, 3, size, size))  # (B, num_outputs)
    logits.sum().backward()
    return logits


@pytest.mark.parametrize("arch", SLOW_SWIN)
def test_swin_states_no_minimum_and_trains_on_a_single_pixel_frame(arch: str) -> None:
    model = VideoTransformer(num_outputs=3, arch=arch, weights="none")
    assert model.input_limits.problems(1, 1) == []
    assert train_step(model, frames=1, size=1).shape == (2, 3)
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("arch", MVIT)
def test_mvit_fails_on_a_clip_other_than_its_fixed_one(arch: str) -> None:
    model = VideoTransformer(num_outputs=3, arch=arch, weights="none")
    with pytest.raises(RuntimeError):
        train_step(model, frames=8, size=224, batch_size=1)


@pytest.mark.parametrize("arch", MVIT)
def test_mvit_refuses_other_clips_naming_the_data_keys_and_their_fixed_values(arch: str) -> None:
    assert LIMITS[arch].problems(8, 112) == [
        f"model={arch} takes only data.frames=16 (torchvision builds MViT's position tables for "
        "16 x 224 x 224 clips; got data.frames=8); set data.frames=16",
        f"model={arch} takes only data.size=224 (torchvision builds MViT's position tables for "
        "16 x 224 x 224 clips; got data.size=112); set data.size=224 or pick model=swin3d_t, "
        "which takes any clip",
    ]


def test_unknown_arch_is_rejected() -> None:
    with pytest.raises(ConfigError, match="model.arch='vit_b_16'"):
        VideoTransformer(num_outputs=2, arch="vit_b_16", weights="none")


@pytest.mark.parametrize("arch", ARCHS)
def test_kinetics400_offline_names_the_file_and_folder(arch: str, empty_hub: Path) -> None:
    file_name = Path(VideoTransformer.pretrained_weights(arch, "kinetics400").url).name
    with pytest.raises(WeightsDownloadError, match=f"{file_name} in {empty_hub}"):
        VideoTransformer(num_outputs=2, arch=arch, weights="kinetics400")


def test_weights_carry_their_preprocessing() -> None:
    """Swin's Kinetics weights were trained on ImageNet statistics, MViT's on 0.45 / 0.225."""
    swin = preprocessing_of(VideoTransformer.pretrained_weights("swin3d_t", "kinetics400"))
    mvit = preprocessing_of(VideoTransformer.pretrained_weights("mvit_v2_s", "kinetics400"))
    assert swin.mean == pytest.approx((0.485, 0.456, 0.406))
    assert (mvit.mean, mvit.std) == ((0.45,) * 3, (0.225,) * 3)
    assert VideoTransformer.pretrained_weights("swin3d_t", "none") is None


def test_local_state_dict_reproduces_the_saved_model(tmp_path: Path) -> None:
    source = VideoTransformer(num_outputs=2, arch="swin3d_t", weights="none").eval()
    torch.save(source.state_dict(), tmp_path / "swin.pt")
    loaded = VideoTransformer(num_outputs=2, arch="swin3d_t", weights=str(tmp_path / "swin.pt"))
    clips = torch.randn(1, 4, 3, 16, 16)  # (B, T, C, H, W)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(clips), source(clips))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS[1:])
def test_local_state_dict_loads_every_weight(arch: str, tmp_path: Path) -> None:
    source = VideoTransformer(num_outputs=2, arch=arch, weights="none")
    torch.save(source.state_dict(), tmp_path / "model.pt")
    loaded = VideoTransformer(num_outputs=2, arch=arch, weights=str(tmp_path / "model.pt"))
    expected = source.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in loaded.state_dict().items())


def test_grey_swin_sums_the_rgb_patch_embedding_kernels() -> None:
    torch.manual_seed(0)
    rgb = VideoTransformer(num_outputs=2, arch="swin3d_t", weights="none").eval()
    torch.manual_seed(0)
    grey = VideoTransformer(num_outputs=2, arch="swin3d_t", weights="none", in_channels=1).eval()
    clip = torch.rand(1, 2, 1, 8, 8)  # (B, T, C, H, W)
    with torch.no_grad():
        torch.testing.assert_close(grey(clip), rgb(clip.expand(-1, -1, 3, -1, -1)))


@pytest.mark.slow
def test_grey_mvit_adapts_its_patch_embedding_conv() -> None:
    model = VideoTransformer(num_outputs=2, arch="mvit_v2_s", weights="none", in_channels=1)
    assert model.net.conv_proj.in_channels == 1


def drop_rates(model: VideoTransformer) -> list[float]:
    return [layer.p for layer in model.net.modules() if isinstance(layer, StochasticDepth)]


def test_drop_path_sets_the_last_blocks_rate_and_scales_the_others_linearly() -> None:
    rates = drop_rates(
        VideoTransformer(num_outputs=2, arch="swin3d_t", weights="none", drop_path=0.3)
    )
    assert len(rates) == 12  # swin3d_t's depths 2 + 2 + 6 + 2
    assert rates == pytest.approx([0.3 * index / 11 for index in range(12)])


def test_drop_path_none_keeps_torchvisions_default() -> None:
    rates = drop_rates(VideoTransformer(num_outputs=2, arch="swin3d_t", weights="none"))
    assert rates[-1] == pytest.approx(0.1)


@pytest.mark.parametrize("drop_path", [-0.1, 1.0])
def test_drop_path_outside_a_probability_is_refused_by_name(drop_path: float) -> None:
    with pytest.raises(ConfigError, match=f"model.drop_path={drop_path}"):
        VideoTransformer(num_outputs=2, arch="swin3d_t", weights="none", drop_path=drop_path)


@given(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 40))
def test_drop_path_rises_linearly_from_zero_to_the_rate_over_any_block_count(
    drop_path: float, blocks: int
) -> None:
    """Planted bug caught: `index / len(layers)` (the last block one step short of the rate)."""
    network = nn.Sequential(*(StochasticDepth(0.5, "row") for _ in range(blocks)))
    set_drop_path(network, drop_path)
    rates = [layer.p for layer in network]
    assert rates[0] == 0.0
    assert rates[-1] == pytest.approx(drop_path if blocks > 1 else 0.0)
    assert all(0.0 <= rate < 1.0 for rate in rates)
    assert rates == sorted(rates)


def test_swin3d_t_torchvision_file_given_as_a_path_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = get_model("swin3d_t").state_dict()
    torch.save(state, tmp_path / "swin3d_t-7615ae03.pth")  # the name in its weights URL
    model = VideoTransformer(
        num_outputs=2, arch="swin3d_t", weights=str(tmp_path / "swin3d_t-7615ae03.pth")
    )
    body = {k: v for k, v in model.net.state_dict().items() if not k.startswith("head.")}
    assert all(torch.equal(value, state[key]) for key, value in body.items())
    assert model.net.head.out_features == 2


@pytest.mark.parametrize(
    "name",
    [
        "KINETICS400_IMAGENET22K_V1",
        "kinetics400_imagenet22k_v1",
        "Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1",
    ],
)
def test_swin3d_b_imagenet22k_weights_are_chosen_by_their_torchvision_name(name: str) -> None:
    chosen = VideoTransformer.pretrained_weights("swin3d_b", name)
    assert chosen is Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1
    assert Path(chosen.url).name == "swin3d_b_22k-7c6ae6fa.pth"
    assert (
        VideoTransformer.pretrained_weights("swin3d_b", "kinetics400")
        is Swin3D_B_Weights.KINETICS400_V1
    )


def test_swin3d_b_imagenet22k_weights_offline_name_their_file_and_folder(empty_hub: Path) -> None:
    with pytest.raises(
        WeightsDownloadError, match=f"model.weights.*swin3d_b_22k-7c6ae6fa.pth in {empty_hub}"
    ):
        VideoTransformer(num_outputs=2, arch="swin3d_b", weights="KINETICS400_IMAGENET22K_V1")


def test_an_unknown_weights_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError,
        match=r"model.weights='IMAGENET22K'.*"
        r"kinetics400, KINETICS400_V1, KINETICS400_IMAGENET22K_V1",
    ):
        VideoTransformer(num_outputs=2, arch="swin3d_b", weights="IMAGENET22K")
