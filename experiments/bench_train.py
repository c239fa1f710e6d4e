"""Benchmark: training steps/s of vidlearn's Lightning task against a plain PyTorch loop.

    python experiments/bench_train.py                         # CPU, fp32, 5 repetitions
    python experiments/bench_train.py --quick                 # smoke test (a few steps)
    python experiments/bench_train.py --device cuda --precision 16-mixed   # GPU variant

Both sides train the same network (FrameGRU from conf/model/frame_gru.yaml, same seed, same
initial weights) with the same optimiser (AdamW from conf/optimizer/adamw.yaml over vidlearn's
parameter groups, constant learning rate) on the same pre-built batches: demo-video clips decoded
once through the VideoDataModule train loader into memory (on the device for --device cuda), so
data loading is out of the comparison. The Lightning side is what `vidlearn-train` runs: the
MulticlassTask (cross-entropy, torchmetrics accuracy / F1 / confusion updated every step) in a
pytorch_lightning.Trainer without logger, checkpoints, progress bar or validation. The plain
side is forward, cross-entropy, zero_grad, backward, step (under torch.autocast to float16 with
a GradScaler for 16-mixed, to bfloat16 for bf16-mixed, as the Trainer does). Steps after `--warmup` warm-up steps are timed; the two sides alternate for
`--repeats` repetitions and the ratio is taken per repetition (median reported).
Steps/s are reported per wall-clock second and per CPU second of the process (time.process_time;
with one torch thread it is much less disturbed by other jobs on a shared machine).
Target: Lightning within 5 % of the plain loop (ratio >= 0.95).
Writes experiments/results/bench_train.json (and bench_train.md).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from common import ROOT, compose_train, environment, markdown_table, write_result
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from vidlearn.cli.train import build_datamodule
from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.optim import parameter_groups

TARGET_RATIO = 0.95
# Autocast dtype of each mixed precision; 16-mixed also scales the loss (GradScaler).
AUTOCAST = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def build_batches(
    num_batches: int, batch_size: int, frames: int, size: int, cache: str | None, manifest=None
):
    """`num_batches` train batches of the demo videos, decoded once; (batches, classes)."""
    overrides = [
        f"data.batch_size={batch_size}",
        f"data.frames={frames}",
        f"data.size={size}",
        "data.num_workers=0",
    ] + ([f"paths.cache_dir={cache}"] if cache else [])
    overrides += [f"data.manifest={manifest}"] if manifest else []
    cfg = compose_train(overrides, Path(tempfile.mkdtemp(prefix="bench_train_")))
    datamodule = build_datamodule(cfg, "multiclass")
    datamodule.setup("fit")
    batches = []
    for batch in datamodule.train_dataloader():
        batches.append({key: batch[key] for key in ("input", "target", "index")})
        if len(batches) == num_batches:
            break
    return batches, datamodule.classes


def new_model(num_classes: int) -> nn.Module:
    torch.manual_seed(0)
    cfg = OmegaConf.load(ROOT / "conf/model/frame_gru.yaml")
    cfg.backbone.in_channels = 3  # the preset reads data.channels; the demo videos are RGB
    return instantiate(cfg, num_outputs=num_classes)


def optimizer_factory():
    cfg = OmegaConf.load(ROOT / "conf/optimizer/adamw.yaml")
    return instantiate(cfg)  # partial AdamW(params, lr=1e-3, weight_decay=0.01)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(batches, classes, steps: int, warmup: int, device, precision: str) -> float:
    """Steps/s of a hand-written loop over `steps` timed steps after `warmup` steps."""
    model = new_model(len(classes)).to(device).train()
    optimizer = optimizer_factory()(parameter_groups(model))
    criterion = nn.CrossEntropyLoss()
    dtype = AUTOCAST.get(precision)  # as the Trainer's precision plugin autocasts
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    start = cpu_start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
        batch = batches[step % len(batches)]
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=bool(dtype)):
            loss = criterion(model(batch["input"]), batch["target"])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    sync(device)
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu_start)


class StepTimer(pl.Callback):
    """Wall time from the start of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.start = self.end = self.cpu_start = self.cpu_end = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_index) -> None:
        if trainer.global_step == self.warmup and not self.start:
            sync(self.device)
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_train_end(self, trainer, module) -> None:
        sync(self.device)
        self.end, self.cpu_end = time.perf_counter(), time.process_time()


def lightning_loop(batches, classes, steps: int, warmup: int, device, precision: str) -> float:
    """Steps/s of vidlearn's MulticlassTask under pytorch_lightning.Trainer."""
    task = MulticlassTask(new_model(len(classes)), classes, optimizer=optimizer_factory())
    timer = StepTimer(warmup, device)
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_steps=warmup + steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[timer],
    )
    # batch_size=None: the pre-built batches are handed over as they are, one per step.
    loader = DataLoader(batches, batch_size=None, shuffle=False, num_workers=0)
    trainer.fit(task, train_dataloaders=loader)
    return steps / (timer.end - timer.start), steps / (timer.cpu_end - timer.cpu_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per repetition")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20, help="distinct batches, cycled")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--precision", default="32", help="32 | 16-mixed | bf16-mixed")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--cache", default=None, help="demo data cache (paths.cache_dir)")
    parser.add_argument("--manifest", default=None, help="other videos (data.manifest)")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.repeats, args.batches = 3, 1, 1, 2
    if args.precision == "16-mixed" and args.device == "cpu":
        parser.error("--precision 16-mixed needs --device cuda (use bf16-mixed on CPU)")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    batches, classes = build_batches(
        args.batches, args.batch_size, args.frames, args.size, args.cache, args.manifest
    )
    batches = [{k: v.to(device) for k, v in batch.items()} for batch in batches]
    runs = []
    for repeat in range(args.repeats):
        # Alternate which side goes first, so drift in machine load hits both alike.
        order = ("plain", "lightning") if repeat % 2 == 0 else ("lightning", "plain")
        run = {}
        for side in order:
            loop = plain_loop if side == "plain" else lightning_loop
            wall, cpu = loop(batches, classes, args.steps, args.warmup, device, args.precision)
            run[side], run[f"{side}_cpu"] = wall, cpu
        run["ratio"] = run["lightning"] / run["plain"]
        run["ratio_cpu"] = run["lightning_cpu"] / run["plain_cpu"]
        runs.append(run)
        print(
            f"repeat {repeat}: plain {run['plain']:.2f} steps/s, lightning "
            f"{run['lightning']:.2f} steps/s, ratio {run['ratio']:.3f} (per CPU second: "
            f"{run['ratio_cpu']:.3f})",
            flush=True,
        )
    median = statistics.median(run["ratio"] for run in runs)
    median_cpu = statistics.median(run["ratio_cpu"] for run in runs)
    record = {
        "environment": environment(args.device),
        "setup": {
            "model": "FrameGRU (conf/model/frame_gru.yaml)",
            "optimizer": "AdamW lr 1e-3 wd 0.01, vidlearn parameter groups, constant lr",
            "clip": f"{args.frames}x3x{args.size}x{args.size}",
            "batch_size": args.batch_size,
            "device": args.device,
            "precision": args.precision,
            "timed_steps": args.steps,
            "warmup_steps": args.warmup,
            "repeats": args.repeats,
        },
        "runs": runs,
        "median_plain_steps_per_s": statistics.median(r["plain"] for r in runs),
        "median_lightning_steps_per_s": statistics.median(r["lightning"] for r in runs),
        "median_ratio": median,
        "median_plain_steps_per_cpu_s": statistics.median(r["plain_cpu"] for r in runs),
        "median_lightning_steps_per_cpu_s": statistics.median(r["lightning_cpu"] for r in runs),
        "median_ratio_cpu": median_cpu,
        "target_ratio": TARGET_RATIO,
        "target_met": median >= TARGET_RATIO,
        "target_met_cpu_time": median_cpu >= TARGET_RATIO,
    }
    keys = ("plain", "lightning", "ratio", "plain_cpu", "lightning_cpu", "ratio_cpu")
    rows = [[i, *(f"{r[k]:.3f}" for k in keys)] for i, r in enumerate(runs)]
    rows.append(["median", *(f"{statistics.median(r[k] for r in runs):.3f}" for k in keys)])
    table = markdown_table(
        [
            "repeat",
            "plain steps/s",
            "Lightning steps/s",
            "ratio (wall)",
            "plain steps/CPU-s",
            "Lightning steps/CPU-s",
            "ratio (CPU time)",
        ],
        rows,
    )
    verdict = "MET" if record["target_met"] else "NOT MET"
    verdict_cpu = "MET" if record["target_met_cpu_time"] else "NOT MET"
    markdown = (
        f"{table}\n\nTarget: Lightning >= {TARGET_RATIO:.2f} x plain loop steps/s: wall clock "
        f"**{verdict}** (median ratio {median:.3f}), per CPU second of the process "
        f"**{verdict_cpu}** (median ratio {median_cpu:.3f}); {args.device}, precision "
        f"{args.precision}, torch threads {args.threads}, batch {args.batch_size} of "
        f"{args.frames}x3x{args.size}x{args.size}, {args.steps} timed steps after "
        f"{args.warmup} warm-up steps per side and repetition.\n"
    )
    name = "bench_train" if args.device == "cpu" else f"bench_train_{args.device}"
    write_result(name + ("_quick" if args.quick else ""), record, markdown, args.out)


if __name__ == "__main__":
    main()
