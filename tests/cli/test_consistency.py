"""End to end, multiclass videos: what vidlearn-eval and vidlearn-predict report for a trained
run agrees with the run itself (its test rows, frame spacing, normalisation and test metrics)."""

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import compose_small_train
from hydra import compose, initialize_config_dir

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.eval import run_eval
from vidlearn.cli.predict import predict
from vidlearn.cli.train import train

CENTER = "+views={_target_: vidlearn.data.clip_sampling.CenterClipSampler}"


@pytest.fixture(scope="module")
def strided_run(tmp_path_factory: pytest.TempPathFactory, demo_videos: Path) -> Path:
    """Best checkpoint of a one-epoch run on 4-frame clips of every 2nd frame, random seed 3."""
    cfg = compose_small_train(
        tmp_path_factory.mktemp("strided"),
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=4",
        "data.train_clip_sampler.stride=2",
        "data.eval_clip_sampler.stride=2",
        "data.mean=[0.4]",
        "data.std=[0.3]",
        "seed=3",
    )
    return Path(train(cfg)["best_checkpoint"])


def _compose(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=["progress=false", "device=cpu", *overrides])


@pytest.mark.slow
def test_eval_and_predict_agree_with_the_run(strided_run: Path, tmp_path: Path) -> None:
    run = strided_run.parent.parent
    test_rows = pd.read_csv(run / "splits.csv").query("split == 'test'")
    evaluation = run_eval(_compose("eval", f"ckpt={strided_run}", "~views", CENTER))
    out = run / "eval" / strided_run.stem / "test"
    videos = pd.read_csv(out / "video_predictions.csv")
    clips = pd.read_csv(out / "clip_predictions.csv")
    # exactly the run's test rows, each read as one centred clip of 4 frames 2 apart
    assert videos["path"].tolist() == test_rows["path"].tolist()
    assert (clips["end_frame"] - clips["start_frame"]).eq(7).all()
    # the protocol of training's test pass: the same accuracy for the same checkpoint
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_checkpoint"] == str(strided_run)
    assert evaluation.metrics()["video"]["accuracy"] == pytest.approx(
        summary["metrics"]["test/accuracy"], abs=1e-6
    )
    # vidlearn-predict on the same files with the same views picks the same class
    files = tmp_path / "test.csv"
    test_rows[["path"]].to_csv(files, index=False)
    (table, _) = predict(
        _compose(
            "predict",
            f"ckpt={strided_run}",
            f"input={files}",
            f"out={tmp_path / 'p.csv'}",
            "~views",
            CENTER,
        )
    )
    assert pd.read_csv(table)["class_1"].tolist() == videos["predicted"].tolist()
