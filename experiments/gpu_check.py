"""GPU check: every GPU figure that README.md and experiments/README.md promise, in one run.

    python experiments/gpu_check.py                   # on a machine with a CUDA GPU, < 8 minutes
    python experiments/gpu_check.py --dry             # CPU stand-ins at tiny sizes: code paths only
    python experiments/gpu_check.py --manifest clips.csv   # other videos than the built-in demo

Sections, each timed and isolated (an error is recorded and the next section runs):

- bench_train: steps/s of vidlearn's Lightning task vs. a plain PyTorch loop (bench_train.py's
  two loops, alternating), with 16-mixed and bf16-mixed.
- loader: steps/s of a short vidlearn training (frame CNN + GRU) on the demo videos with 2+
  loader workers, per epoch, without and with the frame cache (epoch 1 fills it).
- device_augment: the same training with augment=light in the workers (the CPU path) vs.
  augment=light_device with data.normalise_on_device=true (uint8 batches, normalised and
  augmented on the device), both on a filled frame cache so decoding does not hide the difference.
- cnn3d: training steps/s of r3d_18 (random weights) in fp32 and bf16, with and without
  channels_last_3d and torch.compile, as `vidlearn-train channels_last=true compile=true` applies them.
- ddp: `vidlearn-train trainer=ddp trainer.devices=1` as a subprocess: exits 0, writes summary.json.
- transformers: training steps/s of every video transformer preset in conf/model (read at run time)
  with bf16, then channels_last_3d, then torch.compile while the budget lasts.

The run has a time budget (--budget, 450 s: under 8 minutes with start-up). Each section gets a
share of what is left (unused time passes on); an item whose expected time (the longest item of
its section so far) no longer fits is recorded as "skipped: budget", and a section still running
at the end of its share is stopped by an alarm and recorded as stopped, its figures so far kept.

`--dry` runs every section on the CPU with tiny sizes and a few steps, so the code paths are
exercised without a GPU: bf16-mixed stands in for 16-mixed, torch.compile uses backend="eager"
(on the transformer; the 3D CNN runs without and with autocast and channels_last), DDP runs
trainer=ddp_cpu (gloo), started with the run so that its start-up overlaps the others', and one
transformer preset, shrunk where its config allows, stands in for all. Without a GPU and without --dry the script stops and says so.
Writes experiments/results/gpu_check.json (gpu_check_dry.json for --dry) and the Markdown block
that experiments/README.md quotes (.md beside it).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from common import ROOT, compose_train, environment, markdown_table, write_result

BUDGET_S = 450.0
# --dry checks code paths, not time: a budget no loaded CPU runs into (the runner's budget and
# alarm have their own tests).
DRY_BUDGET_S = 900.0
# Relative shares of the budget; the transformers, last, get what the others leave as well.
WEIGHTS = {
    "bench_train": 1.0,
    "loader": 1.5,
    "device_augment": 1.0,
    "cnn3d": 1.0,
    "ddp": 0.75,
    "transformers": 3.5,
}
# Presets whose _target_ lives in these modules are the video transformers.
TRANSFORMER_MODULES = ("vidlearn.models.video_transformers", "vidlearn.models.hf_video")
# --dry shrinks a transformer preset through the keys it has of these (the HF presets do).
DRY_ARCHITECTURE = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
AUTOCAST = {"32": None, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


class BudgetExceeded(BaseException):
    """Raised by the alarm at the end of a section's share (a BaseException: no `except
    Exception` inside a section swallows it)."""


@dataclass
class Sizes:
    """How big and how long each section runs: full on a GPU, tiny for --dry."""

    batch_size: int
    frames: int
    size: int
    workers: int
    train_epochs: int
    limit_batches: int | None  # training steps per epoch; None = the whole epoch
    bench_steps: int
    bench_warmup: int
    bench_repeats: int
    model_steps: int
    model_warmup: int
    cnn3d_model: str  # a conf/model preset
    cnn3d_clip: tuple[int, int, int]  # batch, frames, size
    transformer_clip: tuple[int, int, int]

    @classmethod
    def gpu(cls) -> Sizes:
        return cls(
            batch_size=16,
            frames=8,
            size=64,
            workers=min(8, max(2, len(os.sched_getaffinity(0)) - 2)),
            train_epochs=2,
            limit_batches=None,
            bench_steps=40,
            bench_warmup=10,
            bench_repeats=3,
            model_steps=15,
            model_warmup=5,  # compile traces and generates code in the first two
            cnn3d_model="r3d_18",
            cnn3d_clip=(8, 16, 112),
            transformer_clip=(4, 16, 224),
        )

    @classmethod
    def dry(cls) -> Sizes:
        return cls(
            batch_size=2,
            frames=4,
            size=32,
            workers=2,
            train_epochs=2,
            limit_batches=2,
            bench_steps=2,
            bench_warmup=1,
            bench_repeats=1,
            model_steps=1,
            model_warmup=1,
            cnn3d_model="mc3_18",  # a third of r3d_18's weights: the same code, less CPU
            cnn3d_clip=(2, 4, 32),
            transformer_clip=(1, 4, 32),
        )


@dataclass
class Context:
    """What every section reads: mode, device, data, sizes and a scratch folder."""

    dry: bool
    device: torch.device
    manifest: Path
    sizes: Sizes
    work: Path
    # --dry starts the DDP run with the others: it is mostly a second process's start-up, which
    # then overlaps theirs. On a GPU it runs alone in its section, not to disturb their timings.
    ddp_run: DDPRun | None = None

    @property
    def trainer(self) -> str:
        return "cpu" if self.dry else "gpu"

    def compile(self, model: torch.nn.Module) -> None:
        """torch.compile in place, as vidlearn-train's compile=true; --dry traces only (eager)."""
        model.compile(**({"backend": "eager"} if self.dry else {}))


@dataclass
class Section:
    """One section's figures, skipped items and errors, and the clock of its share."""

    name: str
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    current: str = ""
    longest: dict[str, float] = field(default_factory=dict)  # seconds, by kind of item

    def __post_init__(self) -> None:
        self.deadline = time.perf_counter() + self.seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def measure(
        self, item: str, run: Callable[[], Any], kind: str = "", estimate: float | None = None
    ) -> Any:
        """`run()` recorded as figure `item`; skipped when its estimate passes the share; an
        Exception is recorded under `errors`, not raised.

        The estimate defaults to the longest item of the same `kind` so far (e.g. a compiled
        variant), else the longest of any kind.
        """
        if estimate is None:
            estimate = self.longest.get(kind, max(self.longest.values(), default=0.0))
        if self.left() < estimate:
            self.skipped[item] = (
                f"skipped: budget ({max(self.left(), 0):.0f} s left of the section's "
                f"{self.seconds:.0f} s, about {estimate:.0f} s needed)"
            )
            return None
        self.current = item
        start = time.perf_counter()
        try:
            self.figures[item] = run()
        except Exception as error:  # noqa: BLE001 (isolation: record it, run the next item)
            self.errors[item] = describe(error)
        self.longest[kind] = max(self.longest.get(kind, 0.0), time.perf_counter() - start)
        self.current = ""
        return self.figures.get(item)


def describe(error: BaseException) -> str:
    """The exception's own line(s), then the last frames of its traceback."""
    message = "".join(traceback.format_exception_only(error)).strip()
    frames = "".join(traceback.format_tb(error.__traceback__)[-2:])
    return f"{message}\n{frames}".strip()


class _Alarm:
    """SIGALRM after `seconds`, raising BudgetExceeded; a no-op where signals are unavailable."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(seconds, 0.001)
        self.armed = hasattr(signal, "setitimer") and _main_thread()

    def __enter__(self) -> None:
        if self.armed:
            self.previous = signal.signal(signal.SIGALRM, _raise_budget)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_budget(signum: int, frame: object) -> None:
    raise BudgetExceeded


def run_sections(
    sections: Sequence[tuple[str, float, Callable[[Section], None]]], budget: float
) -> dict[str, dict[str, Any]]:
    """Run each (name, weight, body) in turn within `budget` seconds; a record per section.

    A section gets `left * weight / remaining weights` seconds. Its record: status (ok, error,
    stopped: budget, skipped), seconds, figures, skipped items, errors.
    """
    start = time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    for index, (name, weight, body) in enumerate(sections):
        left = budget - (time.perf_counter() - start)
        remaining = sum(w for _, w, _ in sections[index:])
        section = Section(name, max(left, 0.0) * weight / remaining)
        began = time.perf_counter()
        status = "ok"
        if left <= 0:
            status = "skipped: budget (nothing left of the run's budget)"
        else:
            try:
                with _Alarm(section.seconds):
                    body(section)
            except BudgetExceeded:
                status = f"stopped: budget (share of {section.seconds:.0f} s used up)"
                if section.current:
                    section.skipped[section.current] = status
            except Exception as error:  # noqa: BLE001 (isolation: record it, run the next section)
                section.errors["section"] = describe(error)
        if status == "ok" and section.errors:
            status = "error"
        records[name] = {
            "status": status,
            "share_s": round(section.seconds, 1),
            "seconds": round(time.perf_counter() - began, 1),
            "figures": section.figures,
            "skipped": section.skipped,
            "errors": section.errors,
        }
        print(f"== {name}: {status}, {records[name]['seconds']} s", flush=True)
    return records


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- bench_train: Lightning vs. plain loop ------------------------------------------------------


def bench_train_section(ctx: Context, section: Section) -> None:
    import bench_train

    sizes = ctx.sizes
    batches, classes = bench_train.build_batches(
        4, sizes.batch_size, sizes.frames, sizes.size, None, str(ctx.manifest)
    )
    batches = [{k: v.to(ctx.device) for k, v in batch.items()} for batch in batches]
    precisions = ["16-mixed", "bf16-mixed"]
    if ctx.dry:
        precisions.remove("16-mixed")
        section.skipped["16-mixed"] = (
            "skipped: dry (float16 autocast with a GradScaler is the GPU's; bf16-mixed stands in)"
        )

    def compare(precision: str) -> dict[str, float]:
        runs = []
        for repeat in range(sizes.bench_repeats):
            sides = ("plain", "lightning") if repeat % 2 == 0 else ("lightning", "plain")
            run = {}
            for side in sides:
                loop = bench_train.plain_loop if side == "plain" else bench_train.lightning_loop
                run[side] = loop(
                    batches, classes, sizes.bench_steps, sizes.bench_warmup, ctx.device, precision
                )[0]
            runs.append(run)
        return {
            "plain_steps_per_s": statistics.median(r["plain"] for r in runs),
            "lightning_steps_per_s": statistics.median(r["lightning"] for r in runs),
            "ratio": statistics.median(r["lightning"] / r["plain"] for r in runs),
            "target_met": statistics.median(r["lightning"] / r["plain"] for r in runs)
            >= bench_train.TARGET_RATIO,
        }

    for precision in precisions:
        section.measure(precision, lambda p=precision: compare(p))
    section.figures["setup"] = (
        f"FrameGRU, batch {sizes.batch_size} of {sizes.frames}x3x{sizes.size}x{sizes.size}, "
        f"{sizes.bench_steps} timed steps after {sizes.bench_warmup}, {sizes.bench_repeats} "
        "alternating repetitions (median)"
    )


# ---- training through vidlearn-train's builders: loader and device_augment --------------------


class EpochTimer:
    """Steps/s of every training epoch (a Lightning callback, built lazily to import it late)."""

    @staticmethod
    def make(device: torch.device) -> Any:
        import pytorch_lightning as pl

        class _Timer(pl.Callback):
            def __init__(self) -> None:
                self.rates: list[float] = []
                self.steps = 0
                self.start = 0.0

            def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
                sync(device)
                self.steps, self.start = 0, time.perf_counter()

            def on_train_batch_end(self, *args: Any) -> None:
                self.steps += 1

            def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
                sync(device)
                self.rates.append(self.steps / (time.perf_counter() - self.start))

        return _Timer()


def train_rates(ctx: Context, overrides: Sequence[str], run_dir: Path) -> dict[str, float]:
    """Steps/s per epoch of vidlearn-train's own data, task and trainer for `overrides`.

    Validation, checkpoints and loggers are off: only the training epochs are timed.
    """
    from hydra.utils import get_class

    from vidlearn.cli.schema import validate
    from vidlearn.cli.train import build_task, build_trainer, fit, set_monitor, setup_data

    sizes = ctx.sizes
    common = [
        f"data.manifest={ctx.manifest}",
        f"paths.cache_dir={ctx.work / 'cache'}",
        f"data.batch_size={sizes.batch_size}",
        f"data.frames={sizes.frames}",
        f"data.size={sizes.size}",
        f"data.num_workers={sizes.workers}",
        f"trainer={ctx.trainer}",
        f"trainer.max_epochs={sizes.train_epochs}",
        "++trainer.limit_val_batches=0",
        "~callbacks.model_checkpoint",
        "~callbacks.last_checkpoint",
        "~callbacks.early_stopping",
        "~callbacks.learning_rate_monitor",
        "~logger",
        "test=false",
    ]
    if sizes.limit_batches is not None:
        common.append(f"++trainer.limit_train_batches={sizes.limit_batches}")
    cfg = compose_train([*common, *overrides], run_dir)
    validate(cfg)
    task_class = get_class(cfg.task._target_)
    set_monitor(cfg, task_class)
    datamodule = setup_data(cfg, task_class.label_kind, run_dir)
    model, task = build_task(cfg, datamodule, task_class.label_kind)
    timer = EpochTimer.make(ctx.device)
    trainer = build_trainer(cfg, run_dir, [timer])
    fit(cfg, trainer, model, task, datamodule)
    return {f"epoch_{i + 1}_steps_per_s": rate for i, rate in enumerate(timer.rates)}


def loader_section(ctx: Context, section: Section) -> None:
    cache = ctx.work / "frame_cache_loader"
    variants = {"uncached": [], "frame_cache": [f"data.frame_cache={cache}"]}
    for name, overrides in variants.items():
        section.measure(name, lambda o=overrides, n=name: train_rates(ctx, o, ctx.work / n))
    section.figures["setup"] = (
        f"vidlearn-train's default model and data on {ctx.manifest.name}, batch "
        f"{ctx.sizes.batch_size} of {ctx.sizes.frames} frames at {ctx.sizes.size} px, "
        f"{ctx.sizes.workers} workers, {ctx.sizes.train_epochs} epochs (frame_cache: epoch 1 "
        "fills the cache, later epochs read it)"
    )


def device_augment_section(ctx: Context, section: Section) -> None:
    cache = f"data.frame_cache={ctx.work / 'frame_cache_augment'}"
    variants = {
        "cpu_path": [cache, "augment=light"],
        "device_path": [cache, "augment=light_device", "data.normalise_on_device=true"],
    }
    for name, overrides in variants.items():
        section.measure(name, lambda o=overrides, n=name: train_rates(ctx, o, ctx.work / n))
    section.figures["setup"] = (
        "as loader/frame_cache; cpu_path: augment=light and normalisation in the workers, "
        "device_path: augment=light_device data.normalise_on_device=true (uint8 batches); "
        "the last epoch reads a filled cache"
    )


# ---- model-level step rates: cnn3d and transformers --------------------------------------------


def step_rate(
    model: torch.nn.Module,
    clip: tuple[int, int, int],
    ctx: Context,
    precision: str,
    steps: int,
    warmup: int,
) -> float:
    """Training steps/s (forward, cross-entropy, backward, AdamW) on one random batch."""
    batch, frames, size = clip
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, frames, 3, size, size, generator=generator)  # (B, T, C, H, W)
    targets = torch.randint(0, 3, (batch,), generator=generator)
    inputs, targets = inputs.to(ctx.device), targets.to(ctx.device)
    model.to(ctx.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = AUTOCAST[precision]
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            sync(ctx.device)
            start = time.perf_counter()
        with torch.autocast(ctx.device.type, dtype=dtype or torch.float32, enabled=bool(dtype)):
            loss = F.cross_entropy(model(inputs), targets)  # model: (B, 3)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(ctx.device)
    return steps / (time.perf_counter() - start)


def preset_model(name: str, frames: int, size: int, dry: bool) -> torch.nn.Module:
    """conf/model/<name>.yaml with random weights for RGB clips of frames x size x size."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    preset = OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml")
    if "weights" in preset:
        preset.weights = "none"
    if dry:
        for key, value in DRY_ARCHITECTURE.items():
            if key in preset:
                preset[key] = value
    root = OmegaConf.create({"data": {"frames": frames, "size": size, "channels": 3}})
    root.model = preset
    torch.manual_seed(0)
    return instantiate(root.model, num_outputs=3)


def variant_rate(
    ctx: Context, name: str, clip: tuple[int, int, int], options: Sequence[str], precision: str
) -> float:
    """Steps/s of preset `name` with the layout and compile `options` vidlearn-train applies."""
    from vidlearn.cli.train import to_channels_last

    model = preset_model(name, clip[1], clip[2], ctx.dry)
    if "channels_last" in options:
        to_channels_last(model)
    if "compile" in options:
        ctx.compile(model)
    sizes = ctx.sizes
    rate = step_rate(model, clip, ctx, precision, sizes.model_steps, sizes.model_warmup)
    if "compile" in options:
        torch._dynamo.reset()  # drop the compiled graphs (and the model they hold)
    return rate


CNN3D_VARIANTS = {
    "fp32": ("32", ()),
    "bf16": ("bf16-mixed", ()),
    "bf16+channels_last_3d": ("bf16-mixed", ("channels_last",)),
    "bf16+compile": ("bf16-mixed", ("compile",)),
    "bf16+channels_last_3d+compile": ("bf16-mixed", ("channels_last", "compile")),
}


# --dry: without and with autocast and channels_last; compile's code path is the transformers'
# (tracing a 3D CNN with dynamo costs about 10 CPU-seconds, a shrunk transformer under 2).
DRY_CNN3D = ("fp32", "bf16+channels_last_3d")


def cnn3d_section(ctx: Context, section: Section) -> None:
    clip = ctx.sizes.cnn3d_clip
    for variant, (precision, options) in CNN3D_VARIANTS.items():
        if ctx.dry and variant not in DRY_CNN3D:
            section.skipped[variant] = (
                f"skipped: dry ({' and '.join(DRY_CNN3D)} and the transformers' compile cover "
                "its code)"
            )
            continue
        section.measure(
            variant,
            lambda p=precision, o=options: variant_rate(ctx, ctx.sizes.cnn3d_model, clip, o, p),
            kind="compile" if "compile" in options else "eager",
        )
    section.figures["setup"] = (
        f"{ctx.sizes.cnn3d_model} (conf/model, random weights), steps/s of batch {clip[0]} of "
        f"{clip[1]}x3x{clip[2]}x{clip[2]}, {ctx.sizes.model_steps} timed steps after "
        f"{ctx.sizes.model_warmup} (compile's tracing in the warm-up)"
    )


def transformer_presets(folder: Path = ROOT / "conf" / "model") -> list[str]:
    """The video transformer presets in `folder`, by their _target_'s module, read at run time
    so that presets added later are measured too."""
    from omegaconf import OmegaConf

    names = []
    for path in sorted(folder.glob("*.yaml")):
        target = str(OmegaConf.load(path).get("_target_", ""))
        if target.rsplit(".", 1)[0] in TRANSFORMER_MODULES:
            names.append(path.stem)
    return names


def transformer_clip(name: str, clip: tuple[int, int, int], dry: bool) -> tuple[int, int, int]:
    """`clip`, or the clip a preset's input limits fix (MViT: 16 x 224 x 224)."""
    batch, frames, size = clip
    limits = getattr(preset_model(name, frames, size, dry), "input_limits", None)
    if limits is not None and limits.problems(frames, size):
        return batch, limits.frames or frames, limits.size or size
    return clip


# One pass over every preset after another: bf16 first (cheap), then the three options together,
# then channels_last_3d alone (transformers have one conv, the patch embedding), while time lasts.
TRANSFORMER_PASSES = {
    "bf16": (),
    "bf16+channels_last_3d+compile": ("channels_last", "compile"),
    "bf16+channels_last_3d": ("channels_last",),
}


def transformers_section(ctx: Context, section: Section) -> None:
    presets = transformer_presets()
    section.figures["presets"] = presets
    if not presets:
        section.skipped["presets"] = "skipped: no video transformer preset in conf/model"
        return
    if ctx.dry:
        stand_in = "videomae" if "videomae" in presets else presets[0]
        for name in presets:
            if name != stand_in:
                section.skipped[name] = f"skipped: dry ({stand_in} stands in: same code path)"
        presets = [stand_in]
    clips = {}
    for name in presets:
        try:
            clip = transformer_clip(name, ctx.sizes.transformer_clip, ctx.dry)
        except Exception as error:  # noqa: BLE001 (isolation: one preset, not the section)
            section.errors[name] = describe(error)
            continue
        if ctx.dry and clip != ctx.sizes.transformer_clip:
            section.skipped[name] = f"skipped: dry (its fixed clip {clip[1:]} is a GPU's size)"
            continue
        clips[name] = clip
    for variant, options in TRANSFORMER_PASSES.items():
        for name, clip in clips.items():
            section.measure(
                f"{name}/{variant}",
                lambda n=name, c=clip, o=options: variant_rate(ctx, n, c, o, "bf16-mixed"),
                kind=variant,
            )
    section.figures["setup"] = (
        f"random weights, batch {ctx.sizes.transformer_clip[0]} of "
        f"{ctx.sizes.transformer_clip[1]}x3x{ctx.sizes.transformer_clip[2]}^2 (or the clip a "
        f"preset fixes), {ctx.sizes.model_steps} timed steps after {ctx.sizes.model_warmup}"
        + (f"; dry: {DRY_ARCHITECTURE} where the preset has the key" if ctx.dry else "")
    )


# ---- ddp: a 1-device DDP smoke run of the real console script ---------------------------------


# --dry: the run's start-up is the cost; no workers, no probe, no test split, one val batch.
DRY_DDP = ("data.num_workers=0", "data.probe=false", "test=false", "++trainer.limit_val_batches=1")


def ddp_command(ctx: Context, run_dir: Path) -> list[str]:
    """vidlearn-train with trainer=ddp (ddp_cpu for --dry) on one device, one short epoch."""
    script = Path(sys.executable).with_name("vidlearn-train")
    entry = [str(script)] if script.is_file() else [sys.executable, "-m", "vidlearn.cli.train"]
    sizes = ctx.sizes
    return [
        *entry,
        "trainer=ddp_cpu" if ctx.dry else "trainer=ddp",
        "trainer.devices=1",
        "trainer.max_epochs=1",
        *([f"++trainer.limit_train_batches={sizes.limit_batches}"] if sizes.limit_batches else []),
        f"data.manifest={ctx.manifest}",
        f"paths.cache_dir={ctx.work / 'cache'}",
        f"data.batch_size={sizes.batch_size}",
        f"data.frames={sizes.frames}",
        f"data.size={sizes.size}",
        "~callbacks.progress_bar",
        f"hydra.run.dir={run_dir}",
        *DRY_DDP * ctx.dry,
    ]


class DDPRun:
    """The DDP smoke run as a child process, its output in files (no pipe to fill up)."""

    def __init__(self, ctx: Context) -> None:
        self.run_dir = ctx.work / "ddp_run"
        self.command = ddp_command(ctx, self.run_dir)
        self.log = ctx.work / "ddp_run.log"
        self.start = time.perf_counter()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)

    def result(self, timeout: float) -> dict[str, Any]:
        """Wait up to `timeout` s; the figures of a run that exited 0 and wrote summary.json."""
        try:
            code = self.process.wait(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            self.stop()
            raise BudgetExceeded from None  # killed at the end of the section's share
        summary = self.run_dir / "summary.json"
        if code != 0 or not summary.is_file():
            raise RuntimeError(
                f"{' '.join(self.command)} exited {code}, summary.json "
                f"{'written' if summary.is_file() else 'missing'}:\n"
                f"{self.log.read_text(errors='replace')[-2000:]}"
            )
        return {
            "exit_code": code,
            "summary_json": True,
            "wall_s": round(time.perf_counter() - self.start, 1),
            "command": " ".join([Path(self.command[0]).name, *self.command[1:]]),
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def ddp_section(ctx: Context, section: Section) -> None:
    def smoke() -> dict[str, Any]:
        run = ctx.ddp_run or DDPRun(ctx)
        figures = run.result(section.left())
        figures["started"] = "with the run (dry)" if ctx.ddp_run else "in this section"
        return figures

    section.measure("trainer=ddp_cpu (gloo)" if ctx.dry else "trainer=ddp (nccl)", smoke)


SECTIONS: dict[str, Callable[[Context, Section], None]] = {
    "bench_train": bench_train_section,
    "loader": loader_section,
    "device_augment": device_augment_section,
    "cnn3d": cnn3d_section,
    "ddp": ddp_section,
    "transformers": transformers_section,
}


# ---- the record ---------------------------------------------------------------------------------


def gpu_environment(device: torch.device) -> dict[str, Any]:
    """GPU name, memory, CUDA and cuDNN versions (none for --dry) beside common.environment."""
    record = environment(device.type)
    record["torch"] = torch.__version__
    record["cuda"] = torch.version.cuda
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        record["gpu"] = properties.name
        record["gpu_memory_gib"] = round(properties.total_memory / 2**30, 1)
        record["cudnn"] = torch.backends.cudnn.version()
        record["bf16_supported"] = torch.cuda.is_bf16_supported()
    else:
        record["gpu"] = None
    return record


def markdown(record: dict[str, Any]) -> str:
    """The README block: one row per figure, skipped item and error, section by section."""
    rows = []
    for name, section in record["sections"].items():
        rows.append([f"**{name}**", section["status"], f"{section['seconds']} s"])
        for item, value in section["figures"].items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
            rows.append([name, item, _cell(value)])
        rows += [[name, item, reason] for item, reason in section["skipped"].items()]
        rows += [
            [name, item, "error: " + text.splitlines()[0]]
            for item, text in section["errors"].items()
        ]
    env = record["environment"]
    title = (
        f"gpu_check ({record['mode']}): GPU {env['gpu']}, CUDA {env['cuda']}, torch {env['torch']}; "
        f"{record['seconds']:.0f} s of a {record['budget_s']:.0f} s budget."
    )
    return title + "\n\n" + markdown_table(["section", "figure", "value"], rows) + "\n"


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def demo_manifest(work: Path, dry: bool) -> Path:
    """The videos every section trains on: vidlearn-train's default, the built-in demo videos
    (generated into paths.cache_dir on first use); 24 tiny ones in `work` for --dry."""
    if dry:
        from vidlearn.demo import make_videos

        return make_videos(work / "videos", seed=0, num_videos=24, frames=12, size=32)
    return Path(compose_train([], work / "compose").data.manifest)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU stand-ins, tiny sizes")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help=f"seconds for the sections (default {BUDGET_S}; {DRY_BUDGET_S} with --dry)",
    )
    parser.add_argument("--manifest", type=Path, default=None, help="videos (data.manifest)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these sections")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    if args.budget is not None and not 0 < args.budget < math.inf:  # nan fails both
        parser.error(f"--budget {args.budget:g}: give the sections a number of seconds above 0")
    start = time.perf_counter()
    if not args.dry and not torch.cuda.is_available():
        sys.exit(
            f"gpu_check: no GPU found (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda}, sees no CUDA device). Run it on a machine with a GPU, or "
            "pass --dry to exercise its code paths on the CPU."
        )
    if args.out is not None:  # made (or refused) now, not after minutes of measuring
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"--out {args.out}: cannot be a results folder ({error})")
    if args.dry:
        torch.set_num_threads(1)  # tiny sizes: more threads only contend on a shared machine
    device = torch.device("cpu" if args.dry else "cuda")
    budget = args.budget if args.budget is not None else DRY_BUDGET_S if args.dry else BUDGET_S
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        work = Path(scratch)
        manifest = args.manifest or demo_manifest(work, args.dry)
        ctx = Context(
            args.dry, device, manifest.resolve(), Sizes.dry() if args.dry else Sizes.gpu(), work
        )
        chosen = args.only or list(SECTIONS)
        if args.dry and "ddp" in chosen:
            ctx.ddp_run = DDPRun(ctx)
        sections = [(name, WEIGHTS[name], _bind(SECTIONS[name], ctx)) for name in chosen]
        try:
            records = run_sections(sections, budget - (time.perf_counter() - start))
        finally:
            if ctx.ddp_run:
                ctx.ddp_run.stop()
    record = {
        "environment": gpu_environment(device),
        "mode": "dry (CPU stand-ins, tiny sizes)" if args.dry else "gpu",
        "budget_s": budget,
        "seconds": round(time.perf_counter() - start, 1),
        "sections": records,
        "skipped": {
            f"{name}/{item}": reason
            for name, section in records.items()
            for item, reason in section["skipped"].items()
        },
    }
    name = "gpu_check_dry" if args.dry else "gpu_check"
    write_result(name, record, markdown(record), args.out)
    return record


def _bind(body: Callable[[Context, Section], None], ctx: Context) -> Callable[[Section], None]:
    return lambda section: body(ctx, section)


if __name__ == "__main__":
    main()
