"""vidlearn-export: TorchScript and ONNX files that reproduce PyTorch, with a model card."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.export import export
from vidlearn.inference.checkpoint import load_checkpoint
from vidlearn.inference.export import normalisation


def _export(*overrides: str) -> Path:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return export(compose("export", overrides=list(overrides)))


def test_torchscript_matches_pytorch_at_another_batch_size(
    video_checkpoint: Path, tmp_path: Path
) -> None:
    out = _export(f"ckpt={video_checkpoint}", f"out={tmp_path / 'model.pt'}")
    loaded = load_checkpoint(video_checkpoint)
    inputs = torch.randn(loaded.input_shape(5))
    scripted = torch.jit.load(str(out))
    assert torch.allclose(scripted(inputs), loaded.model(inputs), atol=1e-5)
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["classes"] == ["anticlockwise", "clockwise", "erratic"]
    assert card["input"]["shape"] == ["batch", 6, 3, 32, 32] and card["clip_length"] == 6
    assert card["normalisation"]["mean"] == [0.5, 0.5, 0.5] and card["check"]["max_abs_diff"] < 1e-4
    assert "val/accuracy" in card["training_metrics"]


def test_onnx_runs_under_onnxruntime_like_pytorch(video_checkpoint: Path, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime", reason="format=onnx needs onnxruntime")
    pytest.importorskip("onnx", reason="format=onnx needs onnx")
    out = _export(f"ckpt={video_checkpoint}", "format=onnx", f"out={tmp_path / 'model.onnx'}")
    loaded = load_checkpoint(video_checkpoint)
    inputs = torch.randn(loaded.input_shape(4))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": inputs.numpy()})
    with torch.inference_mode():
        assert np.abs(logits - loaded.model(inputs).numpy()).max() < 1e-4


def test_the_card_of_last_ckpt_leaves_out_the_best_checkpoints_metrics(
    video_checkpoint: Path, tmp_path: Path
) -> None:
    last = video_checkpoint.parent / "last.ckpt"
    assert last.is_file() and last.resolve() != video_checkpoint.resolve()
    out = _export(f"ckpt={last}", f"out={tmp_path / 'model.pt'}")
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training_metrics"] is None
    assert card["training_metrics_checkpoint"] == str(video_checkpoint)


def test_the_card_states_per_frame_max_normalisation() -> None:
    pre = {"mean": [0.5], "std": [0.25], "size": 150, "per_frame_max_norm": True}
    described = normalisation(pre)
    assert described["per_frame_max_norm"] is True
    assert described["formula"].startswith("(pixel / frame_max - mean) / std")
    assert "255" not in described["scale"]
