from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
