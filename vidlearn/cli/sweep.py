"""The sweep table: one row per run of a multirun (its overrides and final metrics).

`SweepTable` is a Hydra callback registered in conf/train.yaml; when a multirun ends it reads
every job's `.hydra/overrides.yaml` and `summary.json` under the sweep directory and writes
`sweep.csv` and `sweep.md` there. When the sweep varies `data.fold`, rows that differ only in
the fold are also summarised as the count, mean and std of each metric over the folds that logged
it (`sweep_folds.csv` / in sweep.md), beside each fold's test-split figures.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig

from vidlearn.cli.console import exit_with

logger = logging.getLogger(__name__)

FOLD_KEY = "data.fold"


def sweep_table(sweep_dir: Path) -> pd.DataFrame:
    """One row per job directory holding summary.json: `run`, `status`, each override key, each
    final metric. Jobs that failed before writing summary.json appear with status `missing`."""
    rows = []
    for overrides_file in sorted(sweep_dir.glob("**/.hydra/overrides.yaml")):
        run = overrides_file.parent.parent
        row: dict[str, Any] = {"run": str(run.relative_to(sweep_dir))}
        for override in yaml.safe_load(overrides_file.read_text()) or []:
            key, _, value = override.partition("=")
            row[key.lstrip("+~")] = value
        summary_file = run / "summary.json"
        if summary_file.is_file():
            summary = json.loads(summary_file.read_text())
            row["status"] = summary.get("status", "ok")
            row.update(summary.get("metrics", {}))
        else:
            row["status"] = "missing"
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values("run", key=lambda runs: runs.map(_natural_key)) if rows else table


FOLD_NOTE = (
    "Each fold's figures are of the checkpoint it selected on its own validation fold (the "
    "run's monitor), so val/* means are optimistic; test/* score that checkpoint on the test "
    "split every fold shares (per fold below). `folds` counts the runs, `<metric> n` the runs "
    "that logged the metric."
)


def fold_summary(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per combination of the other overrides: the number of fold runs, then for each metric
    the number of folds that logged it (`<metric> n`), its mean and its std over them."""
    settings = [c for c in table.columns if c not in {"run", "status", FOLD_KEY, *metrics}]
    grouped = table.groupby(settings, dropna=False) if settings else table.groupby(lambda _: "all")
    summary = grouped[metrics].agg(["count", "mean", "std"])
    summary.columns = [
        f"{metric} {'n' if stat == 'count' else stat}" for metric, stat in summary.columns
    ]
    summary.insert(0, "folds", grouped.size())
    return summary.reset_index()


def write_sweep_table(sweep_dir: Path) -> pd.DataFrame:
    """Write sweep.csv and sweep.md (plus fold means/stds when data.fold varies); return the table."""
    table = sweep_table(sweep_dir)
    table.to_csv(sweep_dir / "sweep.csv", index=False)
    markdown = [f"# Sweep {sweep_dir}", "", _markdown(table)]
    metrics = [c for c in table.columns if "/" in c]
    if FOLD_KEY in table.columns and metrics:
        folds = fold_summary(table[table["status"] == "ok"], metrics)
        folds.to_csv(sweep_dir / "sweep_folds.csv", index=False)
        markdown += ["", "## Mean and std over folds", "", FOLD_NOTE, "", _markdown(folds)]
        tests = [metric for metric in metrics if metric.startswith("test/")]
        if tests:
            settings = [c for c in table.columns if c not in {"run", "status", *metrics}]
            per_fold = table[table["status"] == "ok"][[*settings, *tests]]
            markdown += ["", "## Test split per fold", "", _markdown(per_fold)]
    (sweep_dir / "sweep.md").write_text("\n".join(markdown) + "\n")
    return table


class SweepTable(Callback):
    """Hydra callback: write the sweep table when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_sweep_table(sweep_dir)
        logger.info("sweep table of %d runs: %s", len(table), sweep_dir / "sweep.md")


class SweeperCheck(Callback):
    """Hydra callback: stop a multirun whose sweeper settings Optuna would fail on, before any
    job runs (Optuna raises after building the study, or after a sweep with no trial)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        mistake = sweeper_mistake(config.hydra.sweeper)
        if mistake is not None:
            exit_with(mistake)


DIRECTIONS = ("minimize", "maximize")


def sweeper_mistake(sweeper: DictConfig) -> str | None:
    """Why `hydra.sweeper`'s n_trials or direction (Optuna's keys; other sweepers lack them)
    cannot run, or None."""
    trials = sweeper.get("n_trials")
    if "n_trials" in sweeper and (not isinstance(trials, int) or trials < 1):
        return f"hydra.sweeper.n_trials={trials!r}: run at least 1 trial."
    direction = sweeper.get("direction")
    directions = list(direction) if isinstance(direction, ListConfig) else [direction]
    if "direction" in sweeper and not all(each in DIRECTIONS for each in directions):
        return (
            f"hydra.sweeper.direction={direction!r}: use minimize or maximize (a list of them "
            "for several objectives), matching monitor_mode."
        )
    return None


def _markdown(table: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def _natural_key(run: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in Path(run).parts)
