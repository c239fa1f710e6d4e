"""Reproduction: the evaluation protocol (one view against several) and the regularisers of the
modern recipes (mixup, cutmix, label smoothing, EMA, random erasing), each against none, on a
harder variant of the demo videos, scored on the TEST split.

    python experiments/reproduce_modern_recipes.py            # 2 seeds x (6 runs + 3 evaluations)
    python experiments/reproduce_modern_recipes.py --quick    # smoke test: 1 epoch, tiny data

The harder variant: the demo videos (24 frames, the class is the ORDER in which the dot visits
its circle positions) seen through 3-frame clips (data.frames=3). A clockwise or anticlockwise
clip shows its direction in any window, but 3 consecutive frames of an "erratic" video are in
monotone order (so look like a direction) with probability 1/3: one clip is often not enough,
several spread over the video should help.

Every run is `vidlearn-train` with the same epochs, once per seed (--seeds, default 0 and 1): the demo's frame CNN + GRU
(SmallCNN widths 16-32-64, GRU 64: conf/model/frame_gru.yaml) at 32x32, with a frame cache that
the first run fills (every video decoded once), which keeps the reproduction within a CPU budget.
  1. views:  each seed's `none` run's best checkpoint scored by vidlearn-eval's run_eval with
             views=center (1 clip), views=uniform (5 clips) and views=uniform views.crops=3
             (15 views); each reports its single view (centre clip, centre crop) beside the
             average of its views. The demo frames are square, so the three crops of
             crops=3 are the whole frame each: crops=3 must equal crops=1 (a check, not a gain).
  2. regularisers: none, mix=mixup, mix=cutmix, task.label_smoothing=0.1, callbacks=ema
             (decay 0.99: the runs have a few hundred steps, see conf/callbacks/ema.yaml),
             erasing=random. Each run's final test gives test/accuracy (one centre clip) and
             summary.json's test_views (views=uniform: 5 clips, their single view beside the
             average).
Writes experiments/results/reproduce_modern_recipes.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from common import environment, markdown_table, run_variants, write_result

# Variant name -> overrides on top of the common ones (1 regulariser each).
REGULARISERS: dict[str, list[str]] = {
    "none": [],
    "mixup": ["mix=mixup"],
    "cutmix": ["mix=cutmix"],
    "label_smoothing": ["task.label_smoothing=0.1"],
    "ema": ["callbacks=ema", "callbacks.ema.decay=0.99"],
    "random_erasing": ["erasing=random"],
}
# Views protocol name -> vidlearn-eval overrides, all scoring the `none` run's best checkpoint.
VIEWS: dict[str, list[str]] = {
    "center": ["views=center"],
    "uniform": ["views=uniform"],
    "uniform_3crops": ["views=uniform", "views.crops=3"],
}


def compose_eval(overrides: list[str]) -> Any:
    """conf/eval.yaml composed with `overrides` (as `vidlearn-eval` on the command line)."""
    from hydra import compose, initialize_config_dir

    from vidlearn.cli.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eval", overrides=overrides)


def score_views(checkpoint: str, out: Path, batch_size: int) -> dict[str, dict[str, Any]]:
    """{protocol: side-by-side views, single_view and multi_view metrics} of one checkpoint."""
    from vidlearn.cli.eval import run_eval

    results = {}
    for name, overrides in VIEWS.items():
        cfg = compose_eval(
            [
                f"ckpt={checkpoint}",
                f"out={out / name}",
                "progress=false",
                f"batch_size={batch_size}",
                *overrides,
            ]
        )
        results[name] = {"overrides": overrides, **run_eval(cfg).side_by_side()}
        print(f"== views {name}: {results[name]['multi_view'].get('accuracy')}", flush=True)
    return results


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def per_seed(values: list[float]) -> str:
    return " / ".join(f"{value:.3f}" for value in values)


def views_table(views: dict[int, dict[str, dict[str, Any]]]) -> str:
    """One row per protocol: views per video, accuracy of the single view and of the views
    averaged (mean over seeds, then each seed), and the gain."""
    rows = []
    for name, overrides in VIEWS.items():
        single = [by_name[name]["single_view"]["accuracy"] for by_name in views.values()]
        multi = [by_name[name]["multi_view"]["accuracy"] for by_name in views.values()]
        counts = {by_name[name]["views"]["views"]["max"] for by_name in views.values()}
        rows.append(
            [
                " ".join(overrides),
                "/".join(str(count) for count in sorted(counts)),
                mean(single),
                mean(multi),
                f"{mean(multi) - mean(single):+.3f}",
                per_seed(single),
                per_seed(multi),
            ]
        )
    headers = ["views", "views per video", "acc. 1 view", "acc. averaged", "gain"]
    return markdown_table([*headers, "1 view per seed", "averaged per seed"], rows)


def regulariser_table(results: dict[int, dict[str, dict[str, Any]]]) -> str:
    """One row per regulariser: test accuracy of one centre clip and of 5 clips (mean over
    seeds, its difference from `none`, each seed) and the mean wall time."""

    def accuracies(name: str, clips: int) -> list[float]:
        if clips == 1:
            return [runs[name]["metrics"]["test/accuracy"] for runs in results.values()]
        return [runs[name]["test_views"]["multi_view"]["accuracy"] for runs in results.values()]

    names = list(next(iter(results.values())))
    rows = []
    for name in names:
        one, five = accuracies(name, 1), accuracies(name, 5)
        baseline = "none" in names and name != "none"
        rows.append(
            [
                name,
                " ".join(REGULARISERS[name]) or "(none)",
                mean(one),
                f"{mean(one) - mean(accuracies('none', 1)):+.3f}" if baseline else "",
                per_seed(one),
                mean(five),
                f"{mean(five) - mean(accuracies('none', 5)):+.3f}" if baseline else "",
                per_seed(five),
                f"{mean([runs[name]['wall_s'] for runs in results.values()]):.0f}",
            ]
        )
    headers = ["variant", "overrides", "test acc. 1 clip", "vs none", "per seed"]
    return markdown_table([*headers, "test acc. 5 clips", "vs none", "per seed", "wall s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every run")
    parser.add_argument("--frames", type=int, default=3, help="data.frames (clip length)")
    parser.add_argument("--size", type=int, default=32, help="data.size")
    parser.add_argument("--widths", default="16,32,64", help="SmallCNN widths of the model")
    parser.add_argument("--hidden", type=int, default=64, help="GRU hidden size")
    parser.add_argument("--workers", type=int, default=2, help="data.num_workers")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the trainer")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="a run per seed")
    parser.add_argument("--cache", default=None, help="demo cache (paths.cache_dir)")
    parser.add_argument("--manifest", default=None, help="other videos (data.manifest)")
    parser.add_argument("--variants", nargs="+", default=None, help="run only these regularisers")
    parser.add_argument("--runs", type=Path, default=None, help="run directories (default tmp)")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 epoch, no workers")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.workers, args.size, args.seeds = 1, 0, 16, [0]
    torch.set_num_threads(args.threads)
    runs = args.runs or Path(tempfile.mkdtemp(prefix="reproduce_modern_"))
    load_start = os.getloadavg()

    common = [
        f"trainer.max_epochs={args.epochs}",
        f"data.num_workers={args.workers}",
        f"data.frames={args.frames}",
        f"data.size={args.size}",
        f"model.backbone.widths=[{args.widths}]",
        f"model.hidden_size={args.hidden}",
        "views=uniform",
        # every video decoded once (by the first run), then read from memory-mapped frames
        f"data.frame_cache={runs / 'frame_cache'}",
    ]
    common += [f"paths.cache_dir={args.cache}"] if args.cache else []
    common += [f"data.manifest={args.manifest}"] if args.manifest else []
    variants = {n: o for n, o in REGULARISERS.items() if not args.variants or n in args.variants}
    results, views = {}, {}
    for seed in args.seeds:
        results[seed] = run_variants(variants, [*common, f"seed={seed}"], runs / f"seed{seed}")
        for result in results[seed].values():
            result["test_views"] = _test_views(Path(result["run_dir"]))
        first_name, first = next(iter(results[seed].items()))
        views[seed] = score_views(first["best_checkpoint"], runs / f"seed{seed}" / "views", 16)
    load_end = os.getloadavg()

    markdown = (
        f"Views of each seed's `{first_name}` run's best checkpoint (vidlearn-eval, test split; "
        f"mean over seeds {args.seeds}, then each seed):\n\n{views_table(views)}\n\n"
        f"Regularisers, each alone against none (test split; the 5 clips are views=uniform, "
        f"summary.json's test_views):\n\n{regulariser_table(results)}\n\n"
        f"Test split: {first['num_test']} videos; train {first['num_train']}. {args.epochs} "
        f"epochs each, seeds {args.seeds}, data.frames={args.frames}, data.size={args.size}, "
        f"data.num_workers={args.workers}, torch threads {args.threads}; load average (1 min) "
        f"{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end. Wall time includes "
        "validation each epoch and the final tests.\n"
    )
    record = {
        "environment": environment(),
        "load_average": {"start": load_start, "end": load_end},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "common_overrides": common,
        "views": views,
        "results": results,
    }
    write_result(
        "reproduce_modern_recipes" + ("_quick" if args.quick else ""), record, markdown, args.out
    )


def _test_views(run_dir: Path) -> dict[str, Any] | None:
    """summary.json's test_views of a run (None when it has none)."""
    return json.loads((run_dir / "summary.json").read_text()).get("test_views")


if __name__ == "__main__":
    main()
