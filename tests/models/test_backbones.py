from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18

from vidlearn.errors import ConfigError
from vidlearn.models.backbones import SmallCNN, TimmBackbone, TorchvisionBackbone


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("pooled_size", [1, 2])
def test_small_cnn_maps_images_to_feature_dim_vectors(batch_size: int, pooled_size: int) -> None:
    backbone = SmallCNN(in_channels=3, widths=(4, 8), pooled_size=pooled_size)
    features = backbone(torch.randn(batch_size, 3, 16, 16))
    assert backbone.feature_dim == 8 * pooled_size**2
    assert features.shape == (batch_size, backbone.feature_dim)


def test_small_cnn_rejects_empty_widths() -> None:
    with pytest.raises(ConfigError, match="widths"):
        SmallCNN(widths=())


@pytest.mark.parametrize(
    ("name", "feature_dim"),
    [("resnet18", 512), ("mobilenet_v3_small", 1024), ("efficientnet_b0", 1280)],
)
def test_torchvision_backbone_drops_only_the_final_linear(name: str, feature_dim: int) -> None:
    backbone = TorchvisionBackbone(name, weights="none").eval()
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 32, 32))
    assert backbone.feature_dim == feature_dim
    assert features.shape == (2, feature_dim)


def test_torchvision_backbone_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="'resnet19' is not a torchvision classification model"):
        TorchvisionBackbone("resnet19", weights="none")


def test_torchvision_backbone_rejects_models_without_a_final_linear() -> None:
    with pytest.raises(ConfigError, match="squeezenet1_1.*no final nn.Linear"):
        TorchvisionBackbone("squeezenet1_1", weights="none")


def test_torchvision_backbone_imagenet_without_cached_file_names_it(empty_hub: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=f"model.backbone.weights: .*resnet18-f37072fd.pth in {empty_hub}"
    ):
        TorchvisionBackbone("resnet18", weights="imagenet")


def test_torchvision_backbone_loads_a_local_state_dict(tmp_path: Path) -> None:
    source = TorchvisionBackbone("resnet18", weights="none").eval()
    torch.save(source.state_dict(), tmp_path / "backbone.pt")
    loaded = TorchvisionBackbone("resnet18", weights=str(tmp_path / "backbone.pt")).eval()
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(images), source(images))


def test_timm_backbone_maps_images_to_feature_dim_vectors() -> None:
    pytest.importorskip("timm")
    backbone = TimmBackbone("resnet18", weights="none").eval()
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, backbone.feature_dim)


def test_torchvision_backbone_loads_torchvisions_own_file_given_as_a_path(tmp_path: Path) -> None:
    """resnet18-f37072fd.pth downloaded by hand (the frame CNN + GRU's default backbone) was
    refused: its classifier's keys do not fit the backbone without it."""
    torch.manual_seed(0)
    state = resnet18().state_dict()
    torch.save(state, tmp_path / "resnet18-f37072fd.pth")  # the name in its weights URL
    backbone = TorchvisionBackbone("resnet18", weights=str(tmp_path / "resnet18-f37072fd.pth"))
    assert all(torch.equal(value, state[key]) for key, value in backbone.net.state_dict().items())
    assert backbone.preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
