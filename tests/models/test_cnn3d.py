from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import get_model, get_model_weights

from vidlearn.errors import ConfigError
from vidlearn.models.cnn3d import Video3DCNN

# s3d's temporal pooling needs more frames than the ResNet-style archs.
FRAMES = {"r3d_18": 4, "mc3_18": 4, "r2plus1d_18": 4, "s3d": 8}


def clips(batch_size: int, num_frames: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, num_frames, 3, 32, 32, generator=generator)  # (B, T, C, H, W)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("arch", sorted(FRAMES))
def test_video_3d_cnn_maps_clips_to_logits(arch: str, batch_size: int) -> None:
    model = Video3DCNN(num_outputs=5, arch=arch, weights="none").eval()
    with torch.no_grad():
        assert model(clips(batch_size, FRAMES[arch])).shape == (batch_size, 5)


def test_unknown_arch_is_rejected() -> None:
    with pytest.raises(ConfigError, match="model.arch='r3d_50'"):
        Video3DCNN(num_outputs=2, arch="r3d_50", weights="none")


def test_kinetics400_without_cached_file_names_file_and_folder(empty_hub: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"r3d_18-b3b3357e.pth in {empty_hub}"):
        Video3DCNN(num_outputs=2, arch="r3d_18", weights="kinetics400")


def test_local_state_dict_reproduces_the_saved_model(tmp_path: Path) -> None:
    source = Video3DCNN(num_outputs=2, arch="s3d", weights="none").eval()
    torch.save(source.state_dict(), tmp_path / "s3d.pt")
    loaded = Video3DCNN(num_outputs=2, arch="s3d", weights=str(tmp_path / "s3d.pt")).eval()
    with torch.no_grad():
        assert torch.equal(loaded(clips(1, 8)), source(clips(1, 8)))


def test_local_state_dict_of_another_arch_is_rejected(tmp_path: Path) -> None:
    torch.save(
        Video3DCNN(num_outputs=2, arch="s3d", weights="none").state_dict(), tmp_path / "s3d.pt"
    )
    with pytest.raises(ValueError, match=r"s3d\.pt: state_dict does not fit Video3DCNN"):
        Video3DCNN(num_outputs=2, arch="mc3_18", weights=str(tmp_path / "s3d.pt"))


def torchvision_file(folder: Path, arch: str, **options: int) -> tuple[Path, dict]:
    """A randomly initialised torchvision `arch` saved as its KINETICS400_V1 file is named (the
    file a user downloads by hand from the weights URL); returns its path and state_dict."""
    torch.manual_seed(0)
    state = get_model(arch, **options).state_dict()
    path = folder / Path(get_model_weights(arch).KINETICS400_V1.url).name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, state


def test_torchvisions_own_file_given_as_a_path_loads_as_kinetics400_does(
    hub_dir: Path, tmp_path: Path
) -> None:
    """r2plus1d_18-91a641e6.pth downloaded by hand was refused as a state_dict that does not fit
    Video3DCNN (its keys lack the `net.` prefix, its fc has 400 classes)."""
    path, state = torchvision_file(hub_dir, "r2plus1d_18")
    from_file = Video3DCNN(num_outputs=2, arch="r2plus1d_18", weights=str(path)).eval()
    from_hub = Video3DCNN(num_outputs=2, arch="r2plus1d_18", weights="kinetics400").eval()
    body = {k: v for k, v in from_file.net.state_dict().items() if not k.startswith("fc.")}
    assert all(torch.equal(value, state[key]) for key, value in body.items())
    assert from_file.net.fc.out_features == 2
    assert from_file.preprocessing == from_hub.preprocessing  # Kinetics' mean/std


def test_a_torchvision_file_for_grey_clips_sums_its_rgb_stem(tmp_path: Path) -> None:
    path, state = torchvision_file(tmp_path, "r3d_18")
    model = Video3DCNN(num_outputs=2, arch="r3d_18", weights=str(path), in_channels=1)
    assert torch.equal(model.net.stem[0].weight, state["stem.0.weight"].sum(1, keepdim=True))


def test_a_torchvision_file_of_another_class_count_names_the_file_and_the_keys(
    tmp_path: Path,
) -> None:
    path, _ = torchvision_file(tmp_path, "r3d_18", num_classes=10)
    with pytest.raises(
        ConfigError,
        match=r"r3d_18-b3b3357e\.pth.*torchvision's r3d_18.*fc\.weight: file \(10, 512\)",
    ):
        Video3DCNN(num_outputs=2, arch="r3d_18", weights=str(path))


def test_a_torchvision_file_of_another_arch_names_the_file_and_the_keys(tmp_path: Path) -> None:
    path, _ = torchvision_file(tmp_path, "r3d_18")
    with pytest.raises(ConfigError, match=r"r3d_18-b3b3357e\.pth.*r2plus1d_18.*missing keys"):
        Video3DCNN(num_outputs=2, arch="r2plus1d_18", weights=str(path))
