"""Reproduction: the posture recipe (MobileNetV2, early blocks frozen, pooling + 3 dense layers)
against full fine-tuning and training from scratch on the demo images, per tranche and class on
the TEST split; and the recipe's memory claim (float64 in-memory array vs. vidlearn streaming).

    python experiments/reproduce_posture_recipe.py                 # 3 variants + memory (~10 min)
    python experiments/reproduce_posture_recipe.py --weights ~/.cache/torch/hub/checkpoints/mobilenet_v2-b0353104.pth
    python experiments/reproduce_posture_recipe.py --quick         # smoke test

Variants (experiment=lookdeep_posture: rows with one person, occlusion not 'unknown' and a
posture; Adam, batch 18, pad to square):
  frozen    model.freeze=12 (stem .. Keras block_10 frozen), model.weights=--weights
  finetune  model.freeze=0, model.weights=--weights
  scratch   model.freeze=0, model.weights=none
Without --weights (no ImageNet file ships with vidlearn and nothing is downloaded) "frozen" and
"finetune" also start from RANDOM weights: "frozen" then trains only the late blocks and head
on top of random early features. It is the real comparison only with --weights.
Image size and epochs are capped for a 2-core CPU (--size, --epochs; the recipe: 224, 20).

Per tranche and class: the best checkpoint of each run predicts the test split through the
same ImageDataModule (same preprocessing), and vidlearn.reports.metrics gives precision, recall
and support per class within each tranche (the manifest's `tranche` column).

Memory: two child processes, each sampling its own and its children's resident memory every
10 ms: (i) all demo images loaded as float64 224x224x3 into one array, as the original recipe
did; (ii) one epoch of vidlearn's ImageDataModule train loader at 224x224 (batch 18, workers).
Reported as the peak minus the process's resident memory before the step (torch imported), and
the total peak. The 36k-image figure for (i) is computed from the array's size, not measured.
Writes experiments/results/reproduce_posture_recipe.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from common import compose_train, environment, markdown_table, run_variants, write_result

ORIGINAL_IMAGES = 36_000  # size of the original posture data set (recipe's figure)


# -- memory probes (run in a child process each) ------------------------------------------------
def rss_tree_mb(pid: int) -> float:
    """Resident memory of `pid` and its direct children (DataLoader workers), MiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


class PeakSampler:
    """Peak of rss_tree_mb(this process) sampled every `interval` s in a thread."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_tree_mb(os.getpid()))
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_tree_mb(os.getpid()))


def probe_array(manifest: str, size: int) -> dict[str, float]:
    """(i) every image of `manifest` resized to size x size, float64, in one (N, H, W, 3) array."""
    import pandas as pd
    from PIL import Image

    rows = pd.read_csv(manifest)
    paths = [str(Path(manifest).parent / p) for p in rows["path"]]
    before = rss_tree_mb(os.getpid())
    start = time.perf_counter()
    with PeakSampler() as sampler:
        images = np.empty((len(paths), size, size, 3), dtype=np.float64)
        for i, path in enumerate(paths):
            with Image.open(path) as image:
                images[i] = np.asarray(image.convert("RGB").resize((size, size)), dtype=np.float64)
    return {
        "images": len(paths),
        "array_mb": images.nbytes / 2**20,
        "rss_before_mb": before,
        "peak_rss_mb": sampler.peak,
        "peak_above_before_mb": sampler.peak - before,
        "seconds": time.perf_counter() - start,
    }


def probe_loader(manifest: str, size: int, workers: int, batch_size: int) -> dict[str, float]:
    """(ii) one epoch of vidlearn's ImageDataModule train loader over `manifest`."""
    from vidlearn.cli.train import build_datamodule

    cfg = compose_train(
        [
            "experiment=lookdeep_posture",
            f"data.manifest={manifest}",
            f"data.size={size}",
            f"data.batch_size={batch_size}",
            f"data.num_workers={workers}",
        ],
        Path(tempfile.mkdtemp(prefix="posture_mem_")),
    )
    datamodule = build_datamodule(cfg, "multiclass")
    datamodule.setup("fit")
    before = rss_tree_mb(os.getpid())
    start = time.perf_counter()
    seen = 0
    with PeakSampler() as sampler:
        for batch in datamodule.train_dataloader():
            seen += len(batch["target"])
    return {
        "images": seen,
        "rss_before_mb": before,
        "peak_rss_mb": sampler.peak,
        "peak_above_before_mb": sampler.peak - before,
        "seconds": time.perf_counter() - start,
        "workers": workers,
        "batch_size": batch_size,
    }


def run_probe(kind: str, manifest: str, args: argparse.Namespace) -> dict[str, float]:
    """Run one memory probe in a fresh child process (its own peak, untouched by training)."""
    command = [
        sys.executable,
        __file__,
        "--memory-probe",
        kind,
        "--probe-manifest",
        manifest,
        "--memory-size",
        str(args.memory_size),
        "--workers",
        str(args.workers),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# -- per-tranche evaluation --------------------------------------------------------------------
def per_tranche(result: dict, overrides: list[str]) -> list[dict]:
    """Per tranche and class precision / recall / support of the best checkpoint on test."""
    import pandas as pd
    from hydra.utils import instantiate

    from vidlearn.inference.checkpoint import load_checkpoint
    from vidlearn.reports.metrics import confusion_matrix, per_class_table

    cfg = compose_train([*overrides, "data.num_workers=0"], Path(result["run_dir"]) / "eval")
    datamodule = instantiate(cfg.data, label_kind="multiclass", sampler=None, augment=[])
    datamodule.setup("test")
    loaded = load_checkpoint(result["best_checkpoint"])
    indices, predicted = [], []
    with torch.inference_mode():
        for batch in datamodule.test_dataloader():
            predicted.append(loaded.model(batch["input"]).argmax(dim=-1))
            indices.append(batch["index"])
    rows = datamodule.split_rows("test")
    if "tranche" not in rows.columns:
        manifest = pd.read_csv(cfg.data.manifest)
        tranche = dict(
            zip(manifest["path"].map(lambda p: Path(p).name), manifest["tranche"], strict=True)
        )
        rows["tranche"] = rows["path"].map(lambda p: tranche[Path(p).name])
    order = torch.cat(indices).numpy()
    rows = rows.iloc[order].assign(predicted=torch.cat(predicted).numpy())
    classes = loaded.classes
    table = []
    for tranche, part in [*sorted(rows.groupby("tranche")), ("all", rows)]:
        matrix = confusion_matrix(
            part["target"].to_numpy(), part["predicted"].to_numpy(), len(classes)
        )
        for record in per_class_table(matrix, classes).to_dict("records"):
            if record["class"] in classes:
                table.append({"tranche": str(tranche), **record})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--size", type=int, default=96, help="data.size of the training runs")
    parser.add_argument("--weights", default=None, help="MobileNetV2 ImageNet state_dict file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=None, help="demo cache (paths.cache_dir)")
    parser.add_argument("--manifest", default=None, help="other images (data.manifest)")
    parser.add_argument(
        "--memory-size", type=int, default=224, help="image size of the memory test"
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--memory-probe", choices=["array", "loader"], help=argparse.SUPPRESS)
    parser.add_argument("--probe-manifest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        torch.set_num_threads(1)
        if args.memory_probe == "array":
            result = probe_array(args.probe_manifest, args.memory_size)
        else:
            result = probe_loader(args.probe_manifest, args.memory_size, args.workers, 18)
        print(json.dumps(result))
        return
    if args.quick:
        args.epochs, args.size, args.workers, args.memory_size = 1, 32, 0, 32
    torch.set_num_threads(args.threads)

    weights = args.weights or "none"
    common = [
        "experiment=lookdeep_posture",
        f"trainer.max_epochs={args.epochs}",
        f"data.size={args.size}",
        f"data.num_workers={args.workers}",
    ]
    common += [f"paths.cache_dir={args.cache}"] if args.cache else []
    common += [f"data.manifest={args.manifest}"] if args.manifest else []
    variants = {
        "frozen": ["model.freeze=12", f"model.weights={weights}"],
        "finetune": ["model.freeze=0", f"model.weights={weights}"],
        "scratch": ["model.freeze=0", "model.weights=none"],
    }
    runs = args.runs or Path(tempfile.mkdtemp(prefix="reproduce_posture_"))
    results = run_variants(variants, common, runs)
    for result in results.values():
        result["per_tranche"] = per_tranche(result, result["overrides"])

    classes = next(iter(results.values()))["classes"]
    summary_rows = [
        [
            name,
            r["metrics"].get("test/accuracy", float("nan")),
            r["metrics"].get("test/balanced_accuracy", float("nan")),
            r["epochs"],
            f"{r['wall_s']:.0f}",
        ]
        for name, r in results.items()
    ]
    blocks = [
        markdown_table(
            ["variant", "test accuracy", "test balanced acc.", "epochs", "wall s"], summary_rows
        )
    ]
    tranches = sorted({row["tranche"] for r in results.values() for row in r["per_tranche"]})
    headers = ["variant", "tranche"] + [f"{c} {m}" for c in classes for m in ("P", "R", "n")]
    tranche_rows = []
    for name, result in results.items():
        for tranche in tranches:
            cells = {
                row["class"]: row for row in result["per_tranche"] if row["tranche"] == tranche
            }
            line = [name, tranche]
            for c in classes:
                row = cells[c]
                line += [f"{row['precision']:.2f}", f"{row['recall']:.2f}", int(row["support"])]
            tranche_rows.append(line)
    blocks.append(
        "Per tranche and class on the test split (P precision, R recall, n support):\n\n"
        + markdown_table(headers, tranche_rows)
    )
    weights_note = (
        f"ImageNet weights from {args.weights}."
        if args.weights
        else "No ImageNet weights file: ALL THREE variants start from random weights, so this is "
        "not the recipe's transfer-learning comparison (run with --weights PATH for that)."
    )
    blocks.append(
        f"{weights_note} Caps for a 2-core CPU: data.size={args.size} (recipe 224), "
        f"{args.epochs} epochs (recipe 20); batch 18, Adam, data.num_workers={args.workers}."
    )

    memory = {}
    if not args.skip_memory:
        from vidlearn.cli.demo import ensure_demo

        cache = args.cache or os.environ.get(
            "VIDLEARN_CACHE", str(Path.home() / ".cache" / "vidlearn")
        )
        manifest = args.manifest or str(ensure_demo("images", cache))
        memory = {kind: run_probe(kind, manifest, args) for kind in ("array", "loader")}
        s = args.memory_size
        per_image = s * s * 3 * 8
        memory["array_36k_gb_computed"] = ORIGINAL_IMAGES * per_image / 1e9
        mem_rows = [
            [
                "(i) all images as one float64 array (original)",
                memory["array"]["images"],
                f"{memory['array']['peak_above_before_mb']:.0f}",
                f"{memory['array']['peak_rss_mb']:.0f}",
                f"{memory['array']['seconds']:.1f}",
            ],
            [
                f"(ii) vidlearn ImageDataModule, one train epoch, {args.workers} workers",
                memory["loader"]["images"],
                f"{memory['loader']['peak_above_before_mb']:.0f}",
                f"{memory['loader']['peak_rss_mb']:.0f}",
                f"{memory['loader']['seconds']:.1f}",
            ],
        ]
        blocks.append(
            f"Peak resident memory at {s}x{s}x3 (process + workers, sampled every 10 ms):\n\n"
            + markdown_table(
                ["approach", "images", "peak above start MiB", "peak total MiB", "seconds"],
                mem_rows,
            )
            + f"\n\nExtrapolation (computed, not measured): (i) grows by {per_image / 1e3:.0f} kB "
            f"per image, {memory['array_36k_gb_computed']:.1f} GB for {ORIGINAL_IMAGES:,} images; "
            "(ii) holds one batch per prefetch slot per worker, whatever the number of images."
        )
    record = {
        "environment": environment(),
        "caps": {"epochs": args.epochs, "size": args.size, "weights": args.weights},
        "results": results,
        "memory": memory,
    }
    write_result(
        "reproduce_posture_recipe" + ("_quick" if args.quick else ""),
        record,
        "\n\n".join(blocks) + "\n",
        args.out,
    )


if __name__ == "__main__":
    main()
