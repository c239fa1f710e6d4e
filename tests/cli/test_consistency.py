"""End to end, one tiny run per task kind and input type: what vidlearn-eval, vidlearn-predict
and vidlearn-export report for the run's best checkpoint agrees with the run itself (its test
rows, frame spacing, normalisation and test metrics) and with each other, file by file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_small_train
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.eval import run_eval
from vidlearn.cli.export import export
from vidlearn.cli.predict import predict
from vidlearn.cli.train import train
from vidlearn.demo.cine import make_cine
from vidlearn.inference.checkpoint import load_checkpoint
from vidlearn.inference.evaluate import Evaluation
from vidlearn.inference.predictor import predict_files, top_k_table
from vidlearn.inference.views import build_views

pytestmark = pytest.mark.slow

CENTER = "+views={_target_: vidlearn.data.clip_sampling.CenterClipSampler}"
SEGMENTS = (
    "+views={_target_: vidlearn.data.clip_sampling.UniformSegmentSampler, random_offset: false}"
)
# the cine presets on drawn splits (the prepared folds have no test rows), clips shrunk
CINE = (
    "data.fold_files=null",
    "data.fold=null",
    "data.test_fraction=0.3",
    "data.frames=4",
    "data.size=64",  # the least hms_cnn_rnn takes
    "data.batch_size=4",
)

MULTICLASS = {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy", "macro_f1": "f1"}
# training's binary f1 is the positive class's, eval's the macro average: not compared
BINARY = {
    name: name
    for name in ("accuracy", "balanced_accuracy", "auroc", "average_precision", "log_loss")
}


@dataclasses.dataclass(frozen=True)
class Kind:
    """One row of the table.

    `data`: the fixture giving the manifest; `train`: overrides of the one-epoch run; `views`:
    eval's and predict's overrides that read training's test clips; `metrics`: eval's name of each
    metric whose definition training shares, and training's (its summary's test/<name>); `column`: predict's column of a file's prediction.
    """

    data: str
    train: tuple[str, ...]
    views: tuple[str, ...]
    metrics: dict[str, str]
    column: str = "class_1"
    clip_span: int | None = None  # end_frame - start_frame of every test clip (videos, arrays)


KINDS = {
    # 4-frame clips of every 2nd frame, centred, with their own mean/std
    "multiclass-videos": Kind(
        "demo_videos",
        (
            "data.size=32",
            "data.frames=4",
            "data.train_clip_sampler.stride=2",
            "data.eval_clip_sampler.stride=2",
            "data.mean=[0.4]",
            "data.std=[0.3]",
        ),
        ("~views", CENTER),
        MULTICLASS,
        clip_span=7,  # 4 frames 2 apart
    ),
    # grey arrays, one frame per segment, each frame divided by its own maximum
    "binary-arrays": Kind(
        "cine", ("experiment=hms_cine_binary", *CINE), ("~views", SEGMENTS), BINARY, clip_span=6
    ),
    "regression-arrays": Kind(
        "cine",
        ("experiment=hms_cine_regression", *CINE),
        ("~views", SEGMENTS),
        {name: name for name in ("mae", "rmse", "r2")},
        column="prediction",
        clip_span=6,  # frames 0, 2, 3, 5 of 6: one per segment, not a 4-frame window
    ),
    "multiclass-images": Kind(
        "demo_images",
        ("experiment=lookdeep_posture", "data.size=32", "model.hidden_sizes=[16,16,8]"),
        (),
        MULTICLASS,
    ),
}


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained run, its best checkpoint, and vidlearn-eval's result on its test split."""

    kind: Kind
    checkpoint: Path
    evaluation: Evaluation
    predictions: pd.DataFrame  # eval's per-file table (path, target, predicted, ...)

    @property
    def folder(self) -> Path:
        return self.checkpoint.parent.parent

    def test_rows(self) -> pd.DataFrame:
        return pd.read_csv(self.folder / "splits.csv").query("split == 'test'")


@pytest.fixture(scope="module")
def cine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """labels.csv of 30 demo cine arrays (6 x 32 x 32 uint8): id, age, sex."""
    return make_cine(
        tmp_path_factory.mktemp("cine"), seed=0, num_samples=30, frames=6, size=32, folds=5
    )


def _compose(name: str, *overrides: str) -> DictConfig:
    run_options = [] if name == "export" else ["progress=false", "device=cpu"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=[*run_options, *overrides])


@pytest.fixture(scope="module", params=list(KINDS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One epoch of the kind's run (random seed 3), then vidlearn-eval of its best checkpoint."""
    kind = KINDS[request.param]
    manifest = request.getfixturevalue(kind.data)
    cfg = compose_small_train(
        tmp_path_factory.mktemp(request.param), f"data.manifest={manifest}", *kind.train, "seed=3"
    )
    checkpoint = Path(train(cfg)["best_checkpoint"])
    evaluation = run_eval(_compose("eval", f"ckpt={checkpoint}", *kind.views))
    level = "image" if "images" in request.param else "video"
    out = checkpoint.parent.parent / "eval" / checkpoint.stem / "test"
    predictions = pd.read_csv(out / f"{level}_predictions.csv")
    return Run(kind, checkpoint, evaluation, predictions)


def test_eval_scores_exactly_the_run_test_rows(run: Run) -> None:
    assert len(run.predictions) > 0
    assert run.predictions["path"].tolist() == run.test_rows()["path"].tolist()


def test_eval_reads_clips_spaced_as_in_training(run: Run) -> None:
    if run.kind.clip_span is None:
        pytest.skip("images have no clips")
    out = run.folder / "eval" / run.checkpoint.stem / "test"
    clips = pd.read_csv(out / "clip_predictions.csv")
    assert (clips["end_frame"] - clips["start_frame"]).eq(run.kind.clip_span).all()


def test_eval_metrics_equal_training_test_metrics(run: Run) -> None:
    summary = json.loads((run.folder / "summary.json").read_text())
    assert summary["best_checkpoint"] == str(run.checkpoint)
    level = next(iter(run.evaluation.metrics().values()))  # the file level: video or image
    for name, trained in run.kind.metrics.items():
        assert level[name] == pytest.approx(
            summary["metrics"][f"test/{trained}"], rel=1e-5, abs=1e-6, nan_ok=True
        ), name


def test_predict_gives_eval_prediction_for_every_file(run: Run, tmp_path: Path) -> None:
    files = tmp_path / "test.csv"
    run.test_rows()[["path"]].to_csv(files, index=False)
    (table, *_) = predict(
        _compose(
            "predict",
            f"ckpt={run.checkpoint}",
            f"input={files}",
            f"out={tmp_path / 'p.csv'}",
            *run.kind.views,
        )
    )
    predicted = pd.read_csv(table)[run.kind.column]
    _assert_same(predicted, run.predictions["predicted"])


def test_exported_model_gives_eval_prediction_for_every_file(run: Run, tmp_path: Path) -> None:
    """The TorchScript file in place of the network, fed as predict feeds it."""
    exported = export(_compose("export", f"ckpt={run.checkpoint}", f"out={tmp_path / 'model.pt'}"))
    loaded = load_checkpoint(run.checkpoint)
    loaded = dataclasses.replace(loaded, model=torch.jit.load(str(exported)))
    views_cfg = _compose("predict", "ckpt=x", "input=x", *run.kind.views).views
    views = build_views(views_cfg, loaded.preprocessing) if loaded.modality == "video" else None
    paths = run.test_rows()["path"].tolist()
    predictions = predict_files(loaded, paths, views, progress=False)
    table = top_k_table(predictions, loaded.label_kind, 1, loaded.threshold)
    _assert_same(table[run.kind.column], run.predictions["predicted"])


def _assert_same(actual: pd.Series, expected: pd.Series) -> None:
    if pd.api.types.is_float_dtype(expected):
        np.testing.assert_allclose(actual.to_numpy(float), expected.to_numpy(float), rtol=1e-4)
    else:
        assert actual.astype(str).tolist() == expected.astype(str).tolist()
