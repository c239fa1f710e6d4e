"""Reproduction: the evaluation protocol (one view against several) and the regularisers of the
modern recipes (mixup, cutmix, label smoothing, EMA, random erasing), each against none, on a
harder variant of the demo videos, scored on the TEST split.

    python experiments/reproduce_modern_recipes.py            # 6 runs + 3 evaluations (~15 min, 2 cores)
    python experiments/reproduce_modern_recipes.py --quick    # smoke test: 1 epoch, tiny data

The harder variant: the demo videos (24 frames, the class is the ORDER in which the dot visits
its circle positions) seen through 3-frame clips (data.frames=3). A clockwise or anticlockwise
clip shows its direction in any window, but 3 consecutive frames of an "erratic" video are in
monotone order (so look like a direction) with probability 1/3: one clip is often not enough,
several spread over the video should help.

Every run is `vidlearn-train` with the same seed and epochs: the demo's frame CNN + GRU
(SmallCNN widths 16-32-64, GRU 64: conf/model/frame_gru.yaml) at 32x32, with a frame cache that
the first run fills (every video decoded once), which keeps the reproduction within a CPU budget.
  1. views:  the `none` run's best checkpoint scored by vidlearn-eval's run_eval with
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


def views_table(views: dict[str, dict[str, Any]]) -> str:
    """One row per protocol: views per video, single-view and multi-view accuracies."""
    rows = []
    for result in views.values():
        single, multi = result["single_view"], result["multi_view"]
        rows.append(
            [
                " ".join(result["overrides"]),
                result["views"]["views"]["max"],
                single.get("accuracy", float("nan")),
                multi.get("accuracy", float("nan")),
                single.get("balanced_accuracy", float("nan")),
                multi.get("balanced_accuracy", float("nan")),
            ]
        )
    headers = ["views", "views per video", "acc. 1 view", "acc. averaged"]
    return markdown_table([*headers, "bal. acc. 1 view", "bal. acc. averaged"], rows)


def regulariser_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per regulariser: test accuracy of one centre clip and of 5 clips, val, wall s."""
    rows = []
    for name, result in results.items():
        metrics, views = result["metrics"], result.get("test_views") or {}
        rows.append(
            [
                name,
                " ".join(REGULARISERS[name]) or "(none)",
                metrics.get("test/accuracy", float("nan")),
                metrics.get("test/balanced_accuracy", float("nan")),
                views.get("multi_view", {}).get("accuracy", float("nan")),
                metrics.get("val/balanced_accuracy", float("nan")),
                result["epochs"],
                f"{result['wall_s']:.0f}",
            ]
        )
    headers = ["variant", "overrides", "test acc. (1 clip)", "test bal. acc. (1 clip)"]
    headers += ["test acc. (5 clips)", "best val bal. acc.", "epochs", "wall s"]
    return markdown_table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every run")
    parser.add_argument("--frames", type=int, default=3, help="data.frames (clip length)")
    parser.add_argument("--size", type=int, default=32, help="data.size")
    parser.add_argument("--widths", default="16,32,64", help="SmallCNN widths of the model")
    parser.add_argument("--hidden", type=int, default=64, help="GRU hidden size")
    parser.add_argument("--workers", type=int, default=2, help="data.num_workers")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the trainer")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run")
    parser.add_argument("--cache", default=None, help="demo cache (paths.cache_dir)")
    parser.add_argument("--manifest", default=None, help="other videos (data.manifest)")
    parser.add_argument("--variants", nargs="+", default=None, help="run only these regularisers")
    parser.add_argument("--runs", type=Path, default=None, help="run directories (default tmp)")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 epoch, no workers")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.workers, args.size = 1, 0, 16
    torch.set_num_threads(args.threads)
    runs = args.runs or Path(tempfile.mkdtemp(prefix="reproduce_modern_"))

    common = [
        f"seed={args.seed}",
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
    results = run_variants(variants, common, runs)
    for result in results.values():
        result["test_views"] = _test_views(Path(result["run_dir"]))
    first = next(iter(results.values()))
    views = score_views(first["best_checkpoint"], runs / "views", batch_size=16)

    markdown = (
        f"Views of the `{next(iter(results))}` run's best checkpoint (vidlearn-eval, test split):"
        f"\n\n{views_table(views)}\n\nRegularisers, each alone against none:\n\n"
        f"{regulariser_table(results)}\n\nTest split: {first['num_test']} videos; train "
        f"{first['num_train']}. {args.epochs} epochs each, seed {args.seed}, data.frames="
        f"{args.frames}, data.size={args.size}, data.num_workers={args.workers}, torch threads "
        f"{args.threads}. Wall time includes validation each epoch and the final tests.\n"
    )
    record = {
        "environment": environment(),
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
