from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v2

from vidlearn.errors import ConfigError
from vidlearn.models.mobilenet_v2 import MobileNetV2Classifier

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"  # torchvision's IMAGENET1K_V1 file, as in conftest


def tiny_classifier(**options) -> MobileNetV2Classifier:
    torch.manual_seed(0)
    options.setdefault("weights", "none")
    return MobileNetV2Classifier(num_outputs=3, hidden_sizes=(8, 8, 4), **options)


def images(batch_size: int = 2, channels: int = 3) -> torch.Tensor:
    return torch.randn(batch_size, channels, 32, 32, generator=torch.Generator().manual_seed(1))


def batch_norm_means(blocks: nn.Module) -> list[torch.Tensor]:
    return [m.running_mean.clone() for m in blocks.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_mobilenet_v2_maps_images_to_logits(batch_size: int) -> None:
    assert tiny_classifier().eval()(images(batch_size)).shape == (batch_size, 3)


def test_head_has_the_configured_dense_layers() -> None:
    model = MobileNetV2Classifier(num_outputs=5, weights="none", activation="gelu")
    linears = [layer for layer in model.head if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [
        (1280, 1024),
        (1024, 1024),
        (1024, 512),
        (512, 5),
    ]
    assert sum(isinstance(layer, nn.GELU) for layer in model.head) == 3


def test_default_freeze_matches_the_keras_recipe_block_boundary() -> None:
    model = tiny_classifier()
    frozen = [not any(p.requires_grad for p in block.parameters()) for block in model.features]
    assert frozen == [True] * 12 + [False] * 7


@pytest.mark.parametrize(("freeze", "num_frozen"), [(0, 0), (5, 5), ("all_but_head", 19)])
def test_freeze_sets_the_number_of_frozen_blocks(freeze: int | str, num_frozen: int) -> None:
    model = tiny_classifier(freeze=freeze)
    trainable = [any(p.requires_grad for p in block.parameters()) for block in model.features]
    assert trainable == [False] * num_frozen + [True] * (19 - num_frozen)


def test_sgd_step_changes_unfrozen_weights_and_no_frozen_parameter() -> None:
    model = tiny_classifier(freeze=12).train()
    before = {name: value.clone() for name, value in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(images()).sum().backward()
    optimizer.step()
    frozen_prefixes = tuple(f"features.{i}." for i in range(12))
    for name, value in model.named_parameters():
        changed = not torch.equal(value, before[name])
        if name.startswith(frozen_prefixes):
            assert not changed, name
        elif value.dim() > 1:  # conv/linear weights; a BN bias right before BN gets no gradient
            assert changed, name


def test_frozen_blocks_keep_batchnorm_statistics_in_train_mode() -> None:
    model = tiny_classifier(freeze=12).train()
    frozen_before = batch_norm_means(model.features[:12])
    trained_before = batch_norm_means(model.features[12:])
    model(images())
    assert all(map(torch.equal, batch_norm_means(model.features[:12]), frozen_before))
    assert not any(map(torch.equal, batch_norm_means(model.features[12:]), trained_before))


@pytest.mark.parametrize("freeze", [-1, 20, "all", True])
def test_invalid_freeze_values_are_rejected(freeze: int | str) -> None:
    with pytest.raises(ConfigError, match="model.freeze"):
        tiny_classifier(freeze=freeze)


def test_unknown_activation_is_rejected() -> None:
    with pytest.raises(ConfigError, match="model.activation='swish'"):
        tiny_classifier(activation="swish")


def test_grey_input_maps_to_logits() -> None:
    assert tiny_classifier(in_channels=1)(images(channels=1)).shape == (2, 3)


def test_imagenet_without_cached_file_names_file_and_folder(empty_hub: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"mobilenet_v2-b0353104.pth in {empty_hub}"):
        tiny_classifier(weights="imagenet")


def test_imagenet_weights_come_from_the_hub_cache(cached_imagenet: dict) -> None:
    model = tiny_classifier(weights="imagenet").eval()
    reference = mobilenet_v2()
    reference.load_state_dict(cached_imagenet)
    with torch.no_grad():
        assert torch.equal(model.features(images()), reference.eval().features(images()))


def test_imagenet_grey_input_sees_what_rgb_sees_for_the_repeated_image(
    cached_imagenet: dict,
) -> None:
    grey = tiny_classifier(weights="imagenet", in_channels=1).eval()
    rgb = tiny_classifier(weights="imagenet").eval()
    image = images(channels=1)
    with torch.no_grad():
        expected = rgb.features(image.repeat(1, 3, 1, 1))
        assert torch.allclose(grey.features(image), expected, atol=1e-4)


def test_local_state_dict_reproduces_the_saved_model(tmp_path: Path) -> None:
    source = tiny_classifier().eval()
    torch.save(source.state_dict(), tmp_path / "classifier.pt")
    loaded = tiny_classifier(weights=str(tmp_path / "classifier.pt")).eval()
    with torch.no_grad():
        assert torch.equal(loaded(images()), source(images()))


def test_local_state_dict_of_another_class_count_is_rejected(tmp_path: Path) -> None:
    torch.save(tiny_classifier().state_dict(), tmp_path / "three_classes.pt")
    with pytest.raises(ValueError, match=r"three_classes\.pt.*head\.9\.weight: file \(3, 4\)"):
        MobileNetV2Classifier(
            num_outputs=5, weights=str(tmp_path / "three_classes.pt"), hidden_sizes=(8, 8, 4)
        )


def test_torchvisions_own_file_given_as_a_path_loads_as_imagenet_does(
    fake_imagenet_home: Path, cached_imagenet: dict
) -> None:
    """The file torchvision's weights URL gives, downloaded by hand and passed as a path, was
    refused as a state_dict that does not fit the classifier."""
    path = fake_imagenet_home / "hub" / "checkpoints" / MOBILENET_V2_FILE
    from_file = tiny_classifier(weights=str(path)).eval()
    from_hub = tiny_classifier(weights="imagenet").eval()
    with torch.no_grad():
        assert torch.equal(from_file.features(images()), from_hub.features(images()))
    assert from_file.preprocessing == from_hub.preprocessing  # named as torchvision's: its mean/std


def test_torchvision_file_of_another_class_count_names_the_file_and_the_keys(
    tmp_path: Path,
) -> None:
    torch.save(mobilenet_v2(num_classes=10).state_dict(), tmp_path / "mobilenet_v2_10.pth")
    with pytest.raises(
        ConfigError, match=r"mobilenet_v2_10\.pth.*classifier\.1\.weight: file \(10, 1280\)"
    ):
        tiny_classifier(weights=str(tmp_path / "mobilenet_v2_10.pth"))
