"""vidlearn-eval on a tiny trained model: files written and numbers consistent with the CSVs."""

import json
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.eval import run_eval


def _eval(video_checkpoint: Path, manifest: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                f"ckpt={video_checkpoint}",
                f"data.manifest={manifest}",
                "data.num_workers=0",
                "progress=false",
                *overrides,
            ],
        )
    return run_eval(cfg)


def test_metrics_match_the_per_video_predictions(video_checkpoint: Path, demo_videos: Path) -> None:
    _eval(video_checkpoint, demo_videos, "split=test")
    out = video_checkpoint.parent.parent / "eval" / "test"  # default: RUN/eval/<split>
    report = json.loads((out / "metrics.json").read_text())
    videos = pd.read_csv(out / "video_predictions.csv")
    split = pd.read_csv(demo_videos)
    assert len(videos) == (split["split"] == "test").sum()
    assert report["metrics"]["video"]["accuracy"] == pytest.approx(
        (videos["target"] == videos["predicted"]).mean()
    )
    clips = pd.read_csv(out / "clip_predictions.csv")
    assert len(clips) == videos["windows"].sum() == report["metrics"]["clip"]["count"]
    assert report["metrics"]["clip"]["accuracy"] == pytest.approx(clips["correct"].mean())
    # each video's scores are the mean of its windows' scores
    classes = report["classes"]
    means = clips.groupby("path")[classes].mean().loc[videos["path"]].to_numpy()
    assert means == pytest.approx(videos[classes].to_numpy(), abs=1e-6)
    assert "| macro avg |" in (out / "video_per_class.md").read_text()
    with Image.open(out / "video_confusion.png") as image:
        assert image.format == "PNG" and image.width > 0


def test_uniform_views_and_explicit_out(
    video_checkpoint: Path, demo_videos: Path, tmp_path: Path
) -> None:
    views = "+views={_target_: vidlearn.inference.views.UniformClipsSampler, num_clips: 3}"
    evaluation = _eval(
        video_checkpoint, demo_videos, "split=val", f"out={tmp_path}", "~views", views
    )
    clips = pd.read_csv(tmp_path / "clip_predictions.csv")
    assert (
        clips.groupby("path").size().eq(3).all()
    )  # 12-frame videos, clips of 6: 3 distinct starts
    assert (
        evaluation.metrics()["video"]["count"] == (pd.read_csv(demo_videos)["split"] == "val").sum()
    )


def test_image_data_for_a_video_model_is_refused(video_checkpoint: Path, demo_images: Path) -> None:
    with pytest.raises(ValueError, match="data=video_csv"):
        _eval(video_checkpoint, demo_images, "data=image_csv")
