"""The video transformer presets train through vidlearn-train at the smallest clip their stated
limits allow, are refused by the pre-flight outside those limits, and export."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.export import export
from vidlearn.cli.pretrained import weights_preprocessing
from vidlearn.cli.train import train
from vidlearn.demo.videos import make_videos
from vidlearn.errors import ConfigError
from vidlearn.models.weights import WeightsDownloadError

# The smallest clip each preset's input_limits allow: Swin any (1 frame of 1 pixel); MViT 16 x 224.
SMALLEST = {
    "swin3d_t": (1, 1),
    "swin3d_s": (1, 1),
    "swin3d_b": (1, 1),
    "mvit_v1_b": (16, 224),
    "mvit_v2_s": (16, 224),
}


@pytest.fixture(scope="module")
def four_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 16-frame 32x32 demo videos of two classes: two to train on, one each to validate and
    test on (a couple of clips: the big transformers take seconds per step on a CPU)."""
    root = tmp_path_factory.mktemp("four_videos")
    make_videos(root, seed=0, num_videos=12, frames=16, size=32)
    rows = (root / "manifest.csv").read_text().splitlines()[1:]
    by_label: dict[str, list[str]] = {}
    for row in rows:
        path, label = row.split(",")[:2]
        by_label.setdefault(label, []).append(path)
    (first, second) = sorted(by_label)[:2]
    chosen = [
        (by_label[first][0], first, "train"),
        (by_label[second][0], second, "train"),
        (by_label[first][1], first, "val"),
        (by_label[second][1], second, "test"),
    ]
    manifest = root / "four.csv"
    manifest.write_text(
        "path,label,split\n" + "".join(f"{p},{label},{split}\n" for p, label, split in chosen)
    )
    return manifest


def smallest_clip_run(
    compose_train: Callable[..., DictConfig], manifest: Path, arch: str, *overrides: str
) -> DictConfig:
    frames, size = SMALLEST[arch]
    return compose_train(
        f"model={arch}",
        "model.weights=none",
        f"data.manifest={manifest}",
        f"data.frames={frames}",
        f"data.size={size}",
        "data.batch_size=2",
        *overrides,
    )


def _no_network(*args: object, **kwargs: object) -> socket.socket:
    raise OSError("network is unreachable (test without network)")


def test_kinetics400_offline_stops_the_run_before_the_data_naming_the_file(
    compose_train: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(socket, "create_connection", _no_network)
    cfg = compose_train("model=swin3d_t", f"data.manifest={tmp_path / 'absent.csv'}")
    with pytest.raises(
        WeightsDownloadError, match=r"swin3d_t-7615ae03\.pth in .*model\.weights=none"
    ):
        train(cfg)


@pytest.mark.parametrize(("arch", "mean"), [("swin3d_b", 0.406), ("mvit_v1_b", 0.45)])
def test_a_kinetics_preset_normalises_with_its_weights_statistics(
    compose_train: Callable[..., DictConfig], arch: str, mean: float
) -> None:
    """Left null, data.mean takes the weights' own: ImageNet's for Swin, 0.45 for MViT."""
    preprocessing = weights_preprocessing(compose_train(f"model={arch}").model)
    assert preprocessing.mean[-1] == pytest.approx(mean)


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(SMALLEST))
def test_preset_trains_one_epoch_at_its_smallest_clip(
    compose_train: Callable[..., DictConfig], four_videos: Path, arch: str
) -> None:
    summary = train(smallest_clip_run(compose_train, four_videos, arch))
    assert math.isfinite(summary["metrics"]["val/loss"])
    assert Path(summary["best_checkpoint"]).is_file()


@pytest.mark.slow  # building an MViT and setting up the data: ~10 s
@pytest.mark.parametrize("arch", ["mvit_v1_b", "mvit_v2_s"])
def test_mvit_on_another_clip_is_refused_by_the_preflight_naming_its_fixed_clip(
    compose_train: Callable[..., DictConfig], four_videos: Path, arch: str
) -> None:
    cfg = smallest_clip_run(compose_train, four_videos, arch, "data.frames=8", "data.size=32")
    with pytest.raises(ConfigError, match=r"data\.frames=16 .*data\.size=224"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_a_trained_swin_exports_like_pytorch(
    compose_train: Callable[..., DictConfig], four_videos: Path, tmp_path: Path, format: str
) -> None:
    """vidlearn-export's own check fails the export when the file differs from PyTorch."""
    pytest.importorskip("onnxruntime", reason="format=onnx needs onnxruntime")
    cfg = smallest_clip_run(compose_train, four_videos, "swin3d_t", "data.frames=4", "data.size=16")
    checkpoint = train(cfg)["best_checkpoint"]
    out = tmp_path / f"swin3d_t.{format}"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        export(
            compose("export", overrides=[f"ckpt={checkpoint}", f"format={format}", f"out={out}"])
        )
    assert out.stat().st_size > 0
