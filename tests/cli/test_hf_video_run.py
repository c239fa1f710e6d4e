"""The Hugging Face video transformers through the tools: vidlearn-train from a save_pretrained
folder, then vidlearn-eval, vidlearn-predict and vidlearn-export on the checkpoint it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import compose_small_train
from hydra import compose, initialize_config_dir

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.eval import run_eval
from vidlearn.cli.export import export
from vidlearn.cli.predict import predict
from vidlearn.cli.pretrained import fetch_pretrained
from vidlearn.cli.train import train
from vidlearn.errors import UserError
from vidlearn.inference.checkpoint import load_checkpoint

pytest.importorskip("transformers", reason="the Hugging Face video models need vidlearn[hf]")
from vidlearn.models.hf_video import TimeSformer  # noqa: E402

# A tiny TimeSformer: 32-wide, one block, 16-pixel patches on 32x32 frames, 4-frame clips.
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "patch_size": 16,
}
MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]  # unlike every vidlearn default


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory: pytest.TempPathFactory, demo_videos: Path) -> Path:
    """A TimeSformer trained one epoch from a save_pretrained folder with its own mean/std."""
    root = tmp_path_factory.mktemp("hf_run")
    folder = root / "timesformer"
    TimeSformer(2, weights="none", num_frames=4, size=32, **TINY).backbone.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": MEAN, "image_std": STD})
    )
    cfg = compose_small_train(
        root,
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=4",
        "model=timesformer",
        f"model.weights={folder}",
        *(f"model.{key}={value}" for key, value in TINY.items()),
    )
    summary = train(cfg)
    assert summary["epochs"] == 1 and torch.isfinite(torch.tensor(summary["metrics"]["val/loss"]))
    return Path(summary["best_checkpoint"])


def test_training_normalises_with_the_weights_folders_statistics(hf_checkpoint: Path) -> None:
    preprocessing = load_checkpoint(hf_checkpoint).preprocessing
    assert preprocessing["mean"] == pytest.approx(MEAN) and preprocessing["std"] == pytest.approx(
        STD
    )


def test_eval_scores_the_runs_test_rows(hf_checkpoint: Path, demo_videos: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[f"ckpt={hf_checkpoint}", "data.num_workers=0", "progress=false"],
        )
    evaluation = run_eval(cfg)
    test_rows = (pd.read_csv(demo_videos)["split"] == "test").sum()
    assert evaluation.levels["video"].metrics["count"] == test_rows


def test_predict_gives_a_class_per_file(
    hf_checkpoint: Path, demo_videos: Path, tmp_path: Path
) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "predict",
            overrides=[
                f"ckpt={hf_checkpoint}",
                f"input={demo_videos}",
                f"out={tmp_path / 'p.csv'}",
                "progress=false",
                "device=cpu",
            ],
        )
    files, _ = predict(cfg)
    table = pd.read_csv(files)
    assert len(table) == 30 and table["error"].isna().all()


def test_torchscript_export_matches_the_checkpoint(hf_checkpoint: Path, tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        out = export(
            compose("export", overrides=[f"ckpt={hf_checkpoint}", f"out={tmp_path / 'm.pt'}"])
        )
    loaded = load_checkpoint(hf_checkpoint)
    inputs = torch.randn(loaded.input_shape(3))
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(out))(inputs), loaded.model(inputs), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "frames"), [("videomae", 2), ("timesformer", 1)])
def test_each_backbone_trains_from_random_weights_at_its_smallest_clip(
    name: str, frames: int, tmp_path: Path, demo_videos: Path
) -> None:
    """The smallest clip `input_limits` allows: one tubelet / one frame of one 16-pixel patch."""
    cfg = compose_small_train(
        tmp_path,
        f"data.manifest={demo_videos}",
        "data.size=16",
        f"data.frames={frames}",
        f"model={name}",
        "model.weights=none",
        *(f"model.{key}={value}" for key, value in TINY.items()),
    )
    summary = train(cfg)
    assert torch.isfinite(torch.tensor(summary["metrics"]["val/loss"]))
    assert Path(summary["best_checkpoint"]).is_file()


def test_a_hub_id_missing_from_the_cache_fails_before_the_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidlearn.models import hf_video

    monkeypatch.setattr(hf_video, "hub_cache", lambda: str(tmp_path / "hub"))
    cfg = compose_small_train(tmp_path, "model=videomae", "model.weights=someone/absent")
    with pytest.raises(UserError, match="'someone/absent': this Hugging Face hub id is not in"):
        fetch_pretrained(cfg.model)
