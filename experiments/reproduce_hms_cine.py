"""Reproduction: the cardiac cine recipe, age (R2) and sex (F1), over the 5 prepared cine folds.

    python experiments/reproduce_hms_cine.py                          # CPU-sized, see --help
    python experiments/reproduce_hms_cine.py --epochs 100 --frames 25 --size 150   # original sizes

Each (preset, fold) is one vidlearn-train run in this process, composed as
`vidlearn-train experiment=<preset> data.fold=<k>` would be, on the built-in cine demo (200 beats
of 25 frames, generated into paths.cache_dir on first use) with the prepared fold files
folds/fold_<k>_{train,val}.csv. Run directories go to outputs/reproduce_hms_cine/<start time>/
(vidlearn-train refuses to reuse one). The best checkpoint's validation metric of every run, its
mean and standard deviation (ddof 1, as the sweep table) go to
experiments/results/reproduce_hms_cine.json, and a Markdown table is printed.

CPU defaults (2 epochs, 8 of the 25 frames, 64 px) keep the 10 runs near 15 minutes on 2 shared
cores; they show the pipeline works end to end, not the recipe's accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.train import train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
RUNS = ROOT / "outputs" / "reproduce_hms_cine"
# preset -> (metric reported per fold, its name in the table)
PRESETS = {"hms_cine_regression": ("val/r2", "age R2"), "hms_cine_binary": ("val/f1", "sex F1")}
FOLDS = 5


def run_fold(preset: str, fold: int, args: argparse.Namespace, runs: Path) -> dict[str, Any]:
    """Train one preset on one fold under `runs`; return its summary with the run time."""
    overrides = [
        f"experiment={preset}",
        f"data.fold={fold}",
        f"data.frames={args.frames}",
        f"data.size={args.size}",
        f"data.num_workers={args.workers}",
        f"trainer.max_epochs={args.epochs}",
        f"paths.output_dir={runs / preset / f'fold_{fold}'}",
        f"seed={args.seed}",
        "~callbacks.progress_bar",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    start = time.perf_counter()
    summary = train(cfg)
    return {**summary, "seconds": round(time.perf_counter() - start, 1)}


def markdown_table(results: dict[str, list[float]]) -> str:
    """One row per preset: its metric on each fold, then mean +- std."""
    header = ["task", *(f"fold {k}" for k in range(FOLDS)), "mean ± std"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for preset, values in results.items():
        cells = [f"{value:.3f}" for value in values]
        summary = f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
        lines.append(f"| {PRESETS[preset][1]} | " + " | ".join(cells) + f" | {summary} |")
    return "\n".join(lines)


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="trainer.max_epochs per fold")
    parser.add_argument("--frames", type=int, default=8, help="frames per beat (25 = all)")
    parser.add_argument("--size", type=int, default=64, help="frame size (the original: 150)")
    parser.add_argument("--workers", type=int, default=1, help="data.num_workers")
    parser.add_argument("--seed", type=int, default=0)
    # One thread: on 2 shared cores a step took 1.3 s with 1 thread and 4-8 s with 2.
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the model")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    run_root = RUNS / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    runs, results = [], {}
    for preset in args.presets:
        metric = PRESETS[preset][0]
        results[preset] = []
        for fold in range(FOLDS):
            summary = run_fold(preset, fold, args, run_root)
            value = summary["metrics"][metric]
            results[preset].append(value)
            runs.append(
                {
                    "preset": preset,
                    "fold": fold,
                    metric: value,
                    "metrics": summary["metrics"],
                    "epochs": summary["epochs"],
                    "num_train": summary["num_train"],
                    "num_val": summary["num_val"],
                    "seconds": summary["seconds"],
                }
            )
            print(f"{preset} fold {fold}: {metric} = {value:.4f} ({summary['seconds']} s)")
    table = markdown_table(results)
    record = {
        "date": date.today().isoformat(),
        "commit": commit(),
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "settings": vars(args),
        "total_seconds": round(time.perf_counter() - start, 1),
        "summary": {
            preset: {
                "metric": PRESETS[preset][0],
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)),
            }
            for preset, values in results.items()
        },
        "runs": runs,
        "table": table,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reproduce_hms_cine.json").write_text(json.dumps(record, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
