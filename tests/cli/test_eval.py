"""vidlearn-eval on a tiny trained model: files written and numbers consistent with the CSVs."""

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.eval import run_eval
from vidlearn.errors import UserError
from vidlearn.inference.evaluate import default_output_dir


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
    out = video_checkpoint.parent.parent / "eval" / video_checkpoint.stem / "test"
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


def test_metrics_json_gives_single_and_multi_view_figures_with_the_view_count(
    video_checkpoint: Path, demo_videos: Path, tmp_path: Path
) -> None:
    views = ("views=uniform", "views.num_clips=3", "views.crops=3")
    evaluation = _eval(video_checkpoint, demo_videos, "split=val", f"out={tmp_path}", *views)
    report = json.loads((tmp_path / "metrics.json").read_text())
    # 12-frame videos, clips of 6: 3 distinct starts, times 3 crops
    assert report["views"] == {
        "crops": 3,
        "clips": {"min": 3, "max": 3, "mean": 3.0},
        "views": {"min": 9, "max": 9, "mean": 9.0},
    }
    assert list(report["metrics"]) == ["video", "single_view", "clip"]
    single = pd.read_csv(tmp_path / "single_view_predictions.csv")
    assert report["metrics"]["single_view"]["accuracy"] == pytest.approx(single["correct"].mean())
    clips = pd.read_csv(tmp_path / "clip_predictions.csv")
    assert clips.groupby("path").size().eq(9).all()
    centre = clips[clips["single_view"]].set_index("path").loc[single["path"]]
    assert (centre["crop"] == "centre").all() and (centre["start_frame"] == 3).all()
    classes = report["classes"]
    assert single[classes].to_numpy() == pytest.approx(centre[classes].to_numpy(), abs=1e-6)
    assert (
        evaluation.metrics()["video"]["count"] == (pd.read_csv(demo_videos)["split"] == "val").sum()
    )


def test_image_data_for_a_video_model_is_refused(video_checkpoint: Path, demo_images: Path) -> None:
    with pytest.raises(ValueError, match="data=video_csv"):
        _eval(video_checkpoint, demo_images, "data=image_csv")


def _run_with_splits(video_checkpoint: Path, demo_videos: Path, tmp_path: Path, test: int) -> Path:
    """A copy of the checkpoint in RUN/checkpoints/best.ckpt whose RUN/splits.csv holds the demo
    rows with the first `test` of them as the test split and the rest as train."""
    rows = pd.read_csv(demo_videos)
    rows["path"] = [str((demo_videos.parent / p).resolve()) for p in rows["path"]]
    rows["split"] = ["test"] * test + ["train"] * (len(rows) - test)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    rows.assign(line=range(2, len(rows) + 2)).to_csv(tmp_path / "run" / "splits.csv", index=False)
    return Path(shutil.copy(video_checkpoint, tmp_path / "run" / "checkpoints" / "best.ckpt"))


def _scored(evaluation_dir: Path) -> list[str]:
    return pd.read_csv(evaluation_dir / "video_predictions.csv")["path"].tolist()


def test_without_a_manifest_the_runs_own_test_rows_are_scored(
    video_checkpoint: Path, demo_videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = _run_with_splits(video_checkpoint, demo_videos, tmp_path, test=4)
    with caplog.at_level(logging.INFO), initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        run_eval(compose("eval", overrides=[f"ckpt={checkpoint}", "progress=false"]))
    splits = pd.read_csv(tmp_path / "run" / "splits.csv")
    assert _scored(tmp_path / "run" / "eval" / "best" / "test") == splits["path"][:4].tolist()
    assert "scoring 4 test row(s) from" in caplog.text and "splits.csv" in caplog.text


def test_a_manifest_without_a_split_column_is_scored_on_the_runs_rows(
    video_checkpoint: Path, demo_videos: Path, tmp_path: Path
) -> None:
    checkpoint = _run_with_splits(video_checkpoint, demo_videos, tmp_path, test=5)
    manifest = tmp_path / "no_split.csv"
    pd.read_csv(demo_videos).drop(columns="split").to_csv(manifest, index=False)
    _eval(checkpoint, manifest, f"data.root={demo_videos.parent}", f"out={tmp_path / 'out'}")
    splits = pd.read_csv(tmp_path / "run" / "splits.csv")
    assert _scored(tmp_path / "out") == splits["path"][:5].tolist()


@pytest.mark.parametrize("split", ["test", "all"])
def test_a_test_only_manifest_of_new_files_is_scored_whole(
    video_checkpoint: Path, demo_videos: Path, tmp_path: Path, split: str
) -> None:
    new = tmp_path / "new"
    new.mkdir()
    rows = pd.read_csv(demo_videos).head(6).assign(split="test")
    for path in rows["path"]:
        shutil.copy(demo_videos.parent / path, new / Path(path).name)
    rows.assign(path=[Path(p).name for p in rows["path"]]).to_csv(new / "m.csv", index=False)
    evaluation = _eval(video_checkpoint, new / "m.csv", f"split={split}", f"out={tmp_path / 'o'}")
    assert evaluation.metrics()["video"]["count"] == 6


def test_a_split_whose_files_are_all_unreadable_is_a_user_error(
    video_checkpoint: Path, tmp_path: Path
) -> None:
    (tmp_path / "a.mp4").write_bytes(b"not a video")
    (tmp_path / "m.csv").write_text("path,label,split\na.mp4,clockwise,test\n")
    with pytest.raises(UserError, match="none of the 1 file"):
        _eval(video_checkpoint, tmp_path / "m.csv", f"out={tmp_path / 'o'}")


def test_the_default_output_folder_names_the_checkpoint() -> None:
    run = Path("/runs/r1")
    best = default_output_dir(run / "checkpoints" / "best.ckpt", "test")
    last = default_output_dir(run / "checkpoints" / "last.ckpt", "test")
    assert best == run / "eval" / "best" / "test" and last == run / "eval" / "last" / "test"
