"""Multiruns through vidlearn-train (run in-process) end with a sweep table; the table itself from
job folders."""

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ScriptRun

from vidlearn.cli.sweep import write_sweep_table


def tiny(manifest: Path, cache: Path) -> list[str]:
    return [
        f"data.manifest={manifest}",
        f"paths.cache_dir={cache}",
        "data.size=32",
        "data.frames=6",
        "trainer.max_epochs=1",
        "data.num_workers=0",
        "~callbacks.progress_bar",
    ]


@pytest.fixture
def run_cli(console_script: Callable[..., ScriptRun], tmp_path: Path) -> Callable[..., ScriptRun]:
    """`run_cli(*args)`: vidlearn-train with `args`, in-process, which must succeed."""

    def run(*args: str) -> ScriptRun:
        result = console_script("vidlearn-train", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return run


def fake_job(sweep: Path, num: int, overrides: list[str], metrics: dict[str, float] | None) -> None:
    (sweep / str(num) / ".hydra").mkdir(parents=True)
    (sweep / str(num) / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        summary = {"status": "ok", "metrics": metrics}
        (sweep / str(num) / "summary.json").write_text(json.dumps(summary))


def test_multirun_writes_one_row_per_run_with_overrides_and_metrics(
    run_cli: Callable[..., ScriptRun], tmp_path: Path, demo_videos: Path
) -> None:
    sweep = tmp_path / "sweep"
    run_cli(
        "-m",
        *tiny(demo_videos, tmp_path / "cache"),
        "optimizer.lr=1e-3,1e-4",
        f"hydra.sweep.dir={sweep}",
    )
    table = pd.read_csv(sweep / "sweep.csv")
    assert sorted(table["optimizer.lr"]) == [1e-4, 1e-3]
    assert list(table["status"]) == ["ok", "ok"]
    for run in table["run"]:
        job = sweep / str(run)
        summary = json.loads((job / "summary.json").read_text())
        row = table[table["run"] == run]
        assert row["val/loss"].item() == pytest.approx(summary["metrics"]["val/loss"])
        provenance = json.loads((job / "provenance.json").read_text())
        assert provenance["overrides"] == yaml.safe_load(
            (job / ".hydra" / "overrides.yaml").read_text()
        )
        assert provenance["versions"]["torch"] and provenance["versions"]["pytorch-lightning"]
    markdown = (sweep / "sweep.md").read_text()
    assert "| run |" in markdown and markdown.count("| ok |") == 2


def test_folds_are_summarised_by_mean_and_std_per_setting(tmp_path: Path) -> None:
    for num, (lr, fold, accuracy) in enumerate(
        [("0.1", 0, 0.5), ("0.1", 1, 0.7), ("0.2", 0, 0.9), ("0.2", 1, 0.9)]
    ):
        fake_job(
            tmp_path, num, [f"optimizer.lr={lr}", f"data.fold={fold}"], {"val/accuracy": accuracy}
        )
    fake_job(tmp_path, 4, ["optimizer.lr=0.3", "data.fold=0"], None)  # died before summary.json
    table = write_sweep_table(tmp_path)
    assert list(table["status"]) == ["ok"] * 4 + ["missing"]
    folds = pd.read_csv(tmp_path / "sweep_folds.csv")
    assert folds["optimizer.lr"].tolist() == [0.1, 0.2]
    assert folds["folds"].tolist() == [2, 2]
    assert folds["val/accuracy mean"].tolist() == pytest.approx([0.6, 0.9])
    assert folds["val/accuracy std"].tolist() == pytest.approx([0.1414214, 0.0])
    assert "Mean and std over folds" in (tmp_path / "sweep.md").read_text()


def test_jobs_are_ordered_numerically(tmp_path: Path) -> None:
    for num in (0, 2, 10):
        fake_job(tmp_path, num, [f"seed={num}"], {"val/loss": float(num)})
    assert write_sweep_table(tmp_path)["run"].tolist() == ["0", "2", "10"]


def test_optuna_search_runs_the_requested_trials(
    run_cli: Callable[..., ScriptRun], tmp_path: Path, demo_videos: Path
) -> None:
    sweep = tmp_path / "optuna"
    run_cli(
        "-m",
        "hparams_search=optuna",
        *tiny(demo_videos, tmp_path / "cache"),
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        f"hydra.sweep.dir={sweep}",
    )
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert 0.0 <= best["best_value"] <= 1.0
    table = pd.read_csv(sweep / "sweep.csv")
    assert len(table) == 2 and best["best_value"] == pytest.approx(
        table["val/balanced_accuracy"].max()
    )


def test_fold_summary_counts_the_folds_behind_each_metric(tmp_path: Path) -> None:
    """Issue 21 item 22: folds=3 was shown over a mean of the 2 folds that logged the metric."""
    for fold, metrics in enumerate(
        [{"val/auroc": 0.6, "test/auroc": 0.5}, {"val/auroc": 0.8, "test/auroc": 0.7}, {}]
    ):
        fake_job(tmp_path, fold, [f"data.fold={fold}"], {"val/loss": 0.1 * fold, **metrics})
    write_sweep_table(tmp_path)
    folds = pd.read_csv(tmp_path / "sweep_folds.csv")
    assert folds["folds"].tolist() == [3]
    assert folds["val/auroc n"].tolist() == [2] and folds["val/loss n"].tolist() == [3]
    assert folds["val/auroc mean"].tolist() == pytest.approx([0.7])


def test_fold_summary_says_what_its_figures_are_and_lists_test_scores_per_fold(
    tmp_path: Path,
) -> None:
    """Issue 21 item 3: the summary did not say whose checkpoint it averaged."""
    for fold in range(2):
        fake_job(tmp_path, fold, [f"data.fold={fold}"], {"val/f1": 0.5, "test/f1": 0.25 + fold})
    write_sweep_table(tmp_path)
    markdown = (tmp_path / "sweep.md").read_text()
    assert "selected on its own validation fold" in markdown
    assert "| data.fold | test/f1 |" in markdown and "| 1 | 1.2500 |" in markdown
