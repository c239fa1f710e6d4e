"""Fuzz vidlearn's console scripts with generated broken inputs and count how each case ends.

    python experiments/fuzz_cli.py --cases 2000 --seed 0            # ~10 min on one quiet core
    python experiments/fuzz_cli.py --cases 100 --subprocess 3       # a quick look
    python experiments/fuzz_cli.py --seed 0 --only 17,42 --keep     # reproduce two cases

Each case is one console script (vidlearn-train, -eval, -predict, -stats, -manifest, -cache,
-export) with generated arguments: a broken manifest (missing, renamed or duplicate columns,
empty, BOM, UTF-16, latin-1, unicode and ": " in paths, bad quoting, NaN labels, huge numbers,
paths outside the root, missing or broken files, one class, one row), a bad config override
(negative, zero, huge or mistyped sizes, unknown choices and keys, null) or a broken file
(truncated and zero-byte videos, text renamed .mp4, wrong-shaped .npy, corrupt images, broken
checkpoints). Outcomes:

- `ok`: exit 0 without a traceback;
- `clean_error`: exit 2 with a one-block message ("<script>: error: ...", argparse's usage
  error or vidlearn-manifest's own line) and no traceback;
- `traceback`: "Traceback" in stderr, any other exit code, or an exception escaping main.
- `timeout`: the case ran longer than --case-timeout seconds.

Cases run in this process (a console script's start costs seconds of imports): each script's
`main` is called with `sys.argv` patched, SystemExit caught and stderr captured. Runs that
succeed are kept tiny (one epoch, one batch per split, no workers, 6 videos of 4 frames at
16 x 16). `--subprocess K` re-runs K cases through the real console scripts and records whether
both ways agree. Generation is seeded per case, so `--only` rebuilds the same files.
Writes --out (JSON): counts per outcome and script, and every traceback case with its script,
arguments and the last lines of its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODULES = {
    "vidlearn-train": "vidlearn.cli.train",
    "vidlearn-eval": "vidlearn.cli.eval",
    "vidlearn-predict": "vidlearn.cli.predict",
    "vidlearn-stats": "vidlearn.cli.stats",
    "vidlearn-manifest": "vidlearn.cli.manifest",
    "vidlearn-cache": "vidlearn.cli.cache",
    "vidlearn-export": "vidlearn.cli.export",
}
# How often each script is drawn: training and the data tools read manifests, where most of
# the input surface is.
WEIGHTS = {
    "vidlearn-train": 0.30,
    "vidlearn-eval": 0.14,
    "vidlearn-predict": 0.14,
    "vidlearn-stats": 0.14,
    "vidlearn-manifest": 0.10,
    "vidlearn-cache": 0.10,
    "vidlearn-export": 0.08,
}
TINY = ["data.frames=4", "data.size=16", "data.batch_size=2", "data.num_workers=0"]
TRAIN_TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=1",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "+trainer.enable_model_summary=false",
    "~callbacks.progress_bar",
]
LABELS = ("clockwise", "anticlockwise")


@dataclass
class Case:
    """One generated run: which script, its arguments, and what was broken (for the report)."""

    index: int
    script: str
    args: list[str]
    faults: list[str]
    folder: str


@dataclass
class Result:
    case: Case
    outcome: str
    code: Any
    seconds: float
    tail: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Shared inputs, built once: tiny videos, images, arrays, broken files and a trained checkpoint.


@dataclass
class World:
    folder: Path
    videos: list[Path]
    images: list[Path]
    bad: dict[str, Path]
    checkpoint: Path
    bad_checkpoints: dict[str, Path]


def build_world(folder: Path) -> World:
    """Generate the tiny data every case copies from, and train one checkpoint on it."""
    from vidlearn.demo import make_images, make_videos

    manifest = make_videos(folder / "demo_videos", seed=0, num_videos=6, frames=4, size=32)
    videos = sorted((manifest.parent / "videos").rglob("*.mp4"))
    image_manifest = make_images(folder / "demo_images", seed=0, num_images=6, size=32)
    images = sorted((image_manifest.parent / "images").rglob("*.jpg"))
    bad_dir = folder / "bad"
    bad_dir.mkdir()
    rng = np.random.default_rng(0)
    whole = videos[0].read_bytes()
    bad = {
        "zero_bytes.mp4": b"",
        "text.mp4": b"not a video, just text\n" * 10,
        "truncated.mp4": whole[: len(whole) // 2],
        "random.mp4": rng.integers(0, 256, 2048, dtype=np.uint8).tobytes(),
        "zero_bytes.jpg": b"",
        "text.jpg": b"not an image\n",
        "truncated.jpg": images[0].read_bytes()[:200],
        "text.npy": b"not an array",
    }
    paths = {}
    for name, content in bad.items():
        (bad_dir / name).write_bytes(content)
        paths[name] = bad_dir / name
    arrays = {
        "good.npy": rng.integers(0, 255, (4, 16, 16), dtype=np.uint8),
        "flat.npy": np.arange(10, dtype=np.uint8),
        "five_d.npy": np.zeros((2, 2, 2, 2, 2), np.uint8),
        "float_nan.npy": np.full((4, 16, 16), np.nan, np.float32),
        "one_frame.npy": np.zeros((1, 16, 16), np.uint8),
        "empty.npy": np.zeros((0, 16, 16), np.uint8),
    }
    for name, array in arrays.items():
        np.save(bad_dir / name, array)
        paths[name] = bad_dir / name
    train_dir = folder / "train_run"
    train_dir.mkdir()
    write_manifest_rows(train_dir, videos)
    code, err = run_in_process(
        "vidlearn-train",
        train_args(train_dir, folder / "cache")
        + [f"data.manifest={train_dir / 'manifest.csv'}", "data.frames=4"],
        train_dir,
    )
    found = sorted(train_dir.rglob("last.ckpt"))
    if code not in (0, None) or not found:
        raise RuntimeError(f"training the shared checkpoint failed ({code}):\n{err[-3000:]}")
    checkpoint = found[0]
    data = checkpoint.read_bytes()
    bad_checkpoints = {
        "zero.ckpt": b"",
        "text.ckpt": b"not a checkpoint\n",
        "truncated.ckpt": data[: len(data) // 3],
    }
    ckpt_paths = {}
    for name, content in bad_checkpoints.items():
        (bad_dir / name).write_bytes(content)
        ckpt_paths[name] = bad_dir / name
    import torch

    torch.save({"state_dict": {}}, bad_dir / "no_hparams.ckpt")
    torch.save([1, 2, 3], bad_dir / "list.ckpt")
    ckpt_paths["no_hparams.ckpt"] = bad_dir / "no_hparams.ckpt"
    ckpt_paths["list.ckpt"] = bad_dir / "list.ckpt"
    return World(folder, videos, images, paths, checkpoint, ckpt_paths)


def write_manifest_rows(folder: Path, sources: list[Path]) -> list[dict[str, str]]:
    """Copy `sources` into folder/files and write a clean manifest.csv of them; returns the rows."""
    files = folder / "files"
    files.mkdir(parents=True, exist_ok=True)
    splits = ["train", "train", "train", "train", "val", "test"]
    rows = []
    for i, source in enumerate(sources):
        target = files / f"{i}{source.suffix}"
        shutil.copyfile(source, target)
        split = splits[i % len(splits)]
        rows.append({"path": f"files/{target.name}", "label": LABELS[i % 2], "split": split})
    write_csv(folder / "manifest.csv", ["path", "label", "split"], rows)
    return rows


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]], **options: Any) -> None:
    """A plain comma-separated file, every cell written as given (no quoting added)."""
    encoding = options.get("encoding", "utf-8")
    separator = options.get("separator", ",")
    newline = options.get("newline", "\n")
    lines = [separator.join(header)]
    lines += [separator.join(str(row.get(column, "")) for column in header) for row in rows]
    path.write_bytes((newline.join(lines) + newline).encode(encoding, errors="replace"))


# ---------------------------------------------------------------------------------------------
# Case generation.


def train_args(folder: Path, cache: Path) -> list[str]:
    return [
        f"hydra.run.dir={folder / 'run'}",
        f"paths.log_dir={folder / 'logs'}",
        f"paths.cache_dir={cache}",
        *TINY,
        *TRAIN_TINY,
    ]


def pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def broken_manifest(
    rng: np.random.Generator, world: World, folder: Path, image: bool = False
) -> tuple[Path, list[str], list[str]]:
    """A manifest of copied files with 0-3 faults; returns (path, faults, extra overrides)."""
    sources = world.images if image else world.videos
    rows = write_manifest_rows(folder, sources)
    header = ["path", "label", "split"]
    faults: list[str] = []
    overrides: list[str] = []
    options: dict[str, Any] = {}
    raw: bytes | None = None
    for _ in range(int(rng.integers(0, 4))):
        fault = pick(rng, MANIFEST_FAULTS)
        faults.append(fault)
        if not header and fault in ("drop_column", "rename_column", "duplicate_column"):
            continue
        if fault == "drop_column":
            header.remove(pick(rng, [c for c in header]))
        elif fault == "rename_column":
            index = int(rng.integers(len(header)))
            header[index] = pick(rng, ["Path", " path ", "päth", "", "label ", "split", "日本"])
        elif fault == "duplicate_column":
            header.append(pick(rng, header))
        elif fault == "extra_column":
            header.append(pick(rng, ["speed", "line", "target", "index", "weight", "group"]))
            for row in rows:
                row[header[-1]] = pick(rng, ["1", "", "x", "1e400", "-3"])
        elif fault == "empty_file":
            raw = b""
        elif fault == "header_only":
            rows = []
        elif fault == "one_row":
            rows = rows[:1]
        elif fault == "one_class":
            for row in rows:
                row["label"] = LABELS[0]
        elif fault == "nan_labels":
            for row in rows[: int(rng.integers(0, len(rows) + 1))]:
                row["label"] = pick(rng, ["nan", "NaN", "", "null", "None", " "])
        elif fault == "huge_labels":
            for row in rows:
                row["label"] = pick(rng, ["1e400", "-1e308", "99999999999999999999999", "inf"])
        elif fault == "numeric_labels":
            for i, row in enumerate(rows):
                row["label"] = str(i % 3)
        elif fault == "outside_root":
            row_of(rng, rows)["path"] = pick(
                rng, ["../../x.mp4", "/etc/passwd", "/", "..", "~/x.mp4"]
            )
        elif fault == "missing_file":
            row_of(rng, rows)["path"] = "files/does_not_exist.mp4"
        elif fault == "empty_path":
            row_of(rng, rows)["path"] = pick(rng, ["", " ", '""'])
        elif fault == "duplicate_rows":
            rows = rows + rows[:2]
        elif fault == "broken_file":
            name = pick(rng, list(world.bad))
            target = folder / "files" / f"broken_{name}"
            shutil.copyfile(world.bad[name], target)
            row_of(rng, rows)["path"] = f"files/{target.name}"
        elif fault == "all_broken":
            for i, row in enumerate(rows):
                name = pick(rng, list(world.bad))
                target = folder / "files" / f"all_{i}_{name}"
                shutil.copyfile(world.bad[name], target)
                row["path"] = f"files/{target.name}"
        elif fault == "unicode_path":
            name = pick(rng, ["vidé o ü 日本", "a: b", "x,y", 'q"uote', "tab\tname", "semi;colon"])
            row = row_of(rng, rows)
            source = folder / str(row.get("path", ""))
            if source.is_file():
                target = source.with_name(name + source.suffix)
                source.rename(target)
                row["path"] = f"files/{target.name}"
        elif fault == "quoting":
            row_of(rng, rows)["path"] = pick(rng, ['"files/0.mp4', 'files/0.mp4"', '"a""b"', "'x'"])
        elif fault == "split_values":
            for row in rows:
                row["split"] = pick(rng, ["TRAIN", "validation", "", "foo", "train ", "nan"])
        elif fault == "one_split":
            value = pick(rng, ["train", "val", "test"])
            for row in rows:
                row["split"] = value
        elif fault == "bom":
            options["encoding"] = "utf-8-sig"
        elif fault == "utf16":
            options["encoding"] = "utf-16"
        elif fault == "latin1":
            options["encoding"] = "latin-1"
            row_of(rng, rows)["label"] = "clöckwise"
        elif fault == "separator":
            options["separator"] = pick(rng, [";", "\t", "|"])
        elif fault == "crlf":
            options["newline"] = "\r\n"
        elif fault == "garbage_bytes":
            raw = rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
        elif fault == "null_bytes":
            row_of(rng, rows)["label"] = "click\x00wise"
        elif fault == "ragged":
            header_line = ",".join(header)
            body = "\n".join(",".join(r.get(c, "") for c in header) for r in rows)
            raw = (header_line + "\n" + body + ",too,many,cells\n").encode()
        elif fault == "blank_lines":
            rows.insert(1, {})
        elif fault == "directory_path":
            row_of(rng, rows)["path"] = "files"
        elif fault == "manifest_is_folder":
            return folder / "files", faults, overrides
        elif fault == "manifest_missing":
            return folder / "nope.csv", faults, overrides
    manifest = folder / "manifest.csv"
    if raw is not None:
        manifest.write_bytes(raw)
    else:
        write_csv(manifest, header, rows, **options)
    return manifest, faults, overrides


def row_of(rng: np.random.Generator, rows: list[dict[str, str]]) -> dict[str, str]:
    """A random row of `rows` to break (a throwaway one when there are none)."""
    return rows[int(rng.integers(len(rows)))] if rows else {}


MANIFEST_FAULTS = [
    "drop_column",
    "rename_column",
    "duplicate_column",
    "extra_column",
    "empty_file",
    "header_only",
    "one_row",
    "one_class",
    "nan_labels",
    "huge_labels",
    "numeric_labels",
    "outside_root",
    "missing_file",
    "empty_path",
    "duplicate_rows",
    "broken_file",
    "broken_file",
    "all_broken",
    "unicode_path",
    "quoting",
    "split_values",
    "one_split",
    "bom",
    "utf16",
    "latin1",
    "separator",
    "crlf",
    "garbage_bytes",
    "null_bytes",
    "ragged",
    "blank_lines",
    "directory_path",
    "manifest_is_folder",
    "manifest_missing",
]

BAD_NUMBERS = ["0", "-1", "-7", "1.5", "abc", "null", "1e12", "2**70", "''", "[1,2]", "true"]
# key -> values that are wrong for it (plus BAD_NUMBERS for the numeric ones).
DATA_OVERRIDES: dict[str, list[str]] = {
    "data.batch_size": BAD_NUMBERS + ["1000000000000"],
    "data.num_workers": ["-1", "abc", "1.5", "null"],
    "data.size": BAD_NUMBERS + ["1000000000000", "3", "1"],
    "data.frames": BAD_NUMBERS + ["1000000000000", "1", "100"],
    "data.val_fraction": ["-0.1", "1", "1.5", "abc", "null", "0", "0.99", "nan"],
    "data.test_fraction": ["-0.1", "1", "1.5", "abc", "null", "0", "0.99", "inf"],
    "data.folds": ["0", "1", "-2", "abc", "100", "3"],
    "data.fold": ["-1", "5", "abc", "0", "2"],
    "data.max_bad_fraction": ["-1", "2", "abc", "null", "0", "nan"],
    "data.mean": ["[]", "[0.5,0.5]", "abc", "null", "[a]", "0.5"],
    "data.std": ["[0]", "[-1]", "[]", "abc", "null", "[0.2,0.2]"],
    "data.encoding": ["foo", "utf-16", "latin-1", "ascii", "null", "''"],
    "data.filter": [
        "'label =='",
        "'1'",
        "'label == \"clockwise\"'",
        "'split == \"nope\"'",
        "'nonexistent > 3'",
        "\"__import__('os')\"",
        "''",
    ],
    "data.classes": ["[]", "[clockwise]", "abc", "[a,b,c]", "[clockwise,clockwise]", "null"],
    "data.backend": ["foo", "pyav", "decord", "torchcodec", "null", "1"],
    "data.split_column": ["null", "nope", "label", "path", "''"],
    "data.path_column": ["nope", "''", "label", "null"],
    "data.label_column": ["nope", "''", "path", "split", "null"],
    "data.group_column": ["nope", "label", "path", "''"],
    "data.root": ["/nonexistent", "''", "null", "/"],
    "data.channels": ["0", "-1", "7", "abc", "1", "3"],
    "data.allow_outside_root": ["abc", "null", "true", "2"],
    "data.probe": ["abc", "null", "false"],
    "data.manifest": ["null", "''", "/nonexistent.csv", "/", "???"],
    "data.frame_cache": ["/proc/nope", "''"],
    "data.normalise_on_device": ["true", "abc"],
    "data.frame_cache_max_gb": ["0", "-1", "nan", "abc", "1e-9"],
    "data.decoder_threads": ["0", "-1", "abc", "1000", "2"],
    "data.probe_timeout": ["0", "inf", "nan", "abc"],
    "sampler.alpha": ["nan", "-1", "abc", "0", "inf"],
    "sampler.num_samples": ["0", "-1", "1e12", "1000000000000", "abc", "3"],
}
TRAIN_OVERRIDES: dict[str, list[str]] = {
    **DATA_OVERRIDES,
    "trainer.max_epochs": ["0", "-5", "1.5", "abc", "null"],
    "trainer.precision": ["7", "abc", "null", "16"],
    "trainer.accelerator": ["gpu", "foo", "null"],
    # No count above 1: Lightning would launch DDP, whose workers re-run sys.argv[0], which an
    # in-process case does not have (DDP runs are tested through the real script in test_ddp).
    "trainer.devices": ["0", "-3", "abc", "null"],
    "seed": ["abc", "-1", "1.5", "2**70", "null", "99999999999999999999"],
    "monitor": ["nope/metric", "''", "1"],
    "monitor_mode": ["up", "1", "''"],
    "model": ["foo", "null", "mobilenet_v2", "r3d_18", "s3d", "hms_cnn_rnn"],
    "sampler": ["foo", "null", "weights_column", "oversample", "uniform_regression"],
    "task": ["foo", "binary", "regression"],
    "augment": ["foo", "strong", "light_device", "null"],
    "optimizer": ["foo", "sgd"],
    "scheduler": ["foo", "onecycle", "plateau", "none"],
    "optimizer.lr": ["-1", "abc", "0", "nan", "null"],
    "model.hidden_size": ["0", "-1", "abc", "null"],
    "model.num_layers": ["0", "-1", "abc"],
    "model.temporal": ["foo", "mean"],
    "model.readout": ["foo", "attention", "mean"],
    "model.dropout": ["-1", "2", "abc"],
    "resume": ["/nonexistent", "''", "abc"],
    "data": ["foo", "image_csv", "array_folder", "video_folder", "image_folder"],
    "data.bacth_size": ["3"],
    "+data.unknown_key": ["1"],
    "+model.unknown_key": ["1"],
    "test": ["abc", "false"],
    "experiment": ["foo", "lookdeep_posture"],
    # The groups and options of issue 22 (transformers, regularisers, test-time views,
    # trackers, presets), one step off their tested values.
    "model.weights": ["none", "foo", "''", "null"],
    "model.drop_path": ["-0.1", "1", "nan", "abc", "0.5"],
    "task.layer_decay": ["0", "1.5", "nan", "abc", "[0.5]", "0.75"],
    "task.label_smoothing": ["-0.1", "1", "nan", "abc"],
    "task.conv_weight_decay": ["-1", "nan", "abc", "inf"],
    "task.class_weights": ["[1]", "[1,nan]", "foo", "balanced", "[]"],
    "mix": ["mixup", "cutmix", "mixup_cutmix", "foo"],
    "mix.mixup_alpha": ["-1", "nan", "inf", "abc"],
    "mix.prob": ["-1", "2", "nan"],
    "erasing": ["random", "foo"],
    "erasing.area": ["[0.5]", "[0.5,0.1]", "[0,1]", "abc"],
    "erasing.value": ["foo", "random"],
    "callbacks": ["ema", "foo"],
    "callbacks.ema.decay": ["0", "1", "nan", "-1", "abc"],
    "views": ["center", "uniform", "sliding", "foo"],
    "views.crops": ["0", "2", "3", "nan", "abc"],
    "views.num_clips": ["0", "-1", "abc", "1000"],
    "logger": ["mlflow", "wandb", "tensorboard", "foo"],
    "logger.mlflow.experiment_name": ["''", "x"],
    "optimizer.weight_decay": ["-1", "inf", "nan"],
    "scheduler.warmup_epochs": ["-1", "nan", "abc", "1000"],
    "scheduler.pct_start": ["0", "2", "nan"],
    "scheduler.factor": ["2", "0", "nan"],
    "scheduler.monitor": ["nope/x", "train/loss"],
    "trainer.gradient_clip_val": ["-1", "nan", "abc", "inf"],
    "+sed": ["3"],
    "+paths.log_dri": ["x"],
}
# Model and preset choices a user picks with the group, drawn beside the table above.
NEW_CHOICES = {
    "model": ["swin3d_t", "mvit_v2_s", "videomae", "timesformer", "r2plus1d_18", "mc3_18"],
    "experiment": ["finetune_swin3d_t", "finetune_r2plus1d_18", "hms_cine_binary"],
    "scheduler": ["onecycle", "plateau"],
    "trainer.precision": ["bf16-mixed", "16-mixed", "transformer-engine", "64"],
    "data.backend": ["auto", "torchcodec_approximate"],
}
for _key, _values in NEW_CHOICES.items():
    TRAIN_OVERRIDES[_key] = TRAIN_OVERRIDES.get(_key, []) + _values
MALFORMED = ["data.size=[", "=3", "data..size=1", "data.size", "+data.size=4", "~data.nope"]


def some_overrides(
    rng: np.random.Generator, table: dict[str, list[str]], chance: float
) -> tuple[list[str], list[str]]:
    """Each key of `table` with probability `chance`, set to one of its values; (overrides,
    faults)."""
    overrides, faults = [], []
    for key, values in table.items():
        if rng.random() < chance:
            overrides.append(f"{key}={pick(rng, values)}")
            faults.append(f"config:{key}")
    return overrides, faults


def config_faults(
    rng: np.random.Generator, table: dict[str, list[str]]
) -> tuple[list[str], list[str]]:
    """0-3 bad overrides from `table`, sometimes one malformed override."""
    overrides, faults = [], []
    for _ in range(int(rng.integers(0, 4))):
        key = pick(rng, list(table))
        value = pick(rng, table[key])
        overrides.append(f"{key}={value}")
        faults.append(f"config:{key}")
    if rng.random() < 0.05:
        overrides.append(pick(rng, MALFORMED))
        faults.append("malformed_override")
    return overrides, faults


def checkpoint_arg(rng: np.random.Generator, world: World, faults: list[str]) -> str:
    """Usually the good checkpoint; else a broken one or a missing path."""
    if rng.random() < 0.7:
        return str(world.checkpoint)
    name = pick(rng, [*world.bad_checkpoints, "missing", "folder", "video"])
    faults.append(f"ckpt:{name}")
    if name == "missing":
        return "/nonexistent/last.ckpt"
    if name == "folder":
        return str(world.folder)
    if name == "video":
        return str(world.videos[0])
    return str(world.bad_checkpoints[name])


def make_case(index: int, seed: int, world: World, root: Path) -> Case:
    """Case `index` of the run seeded `seed`: the same script, files and arguments every time."""
    rng = np.random.default_rng([seed, index])
    script = str(rng.choice(list(WEIGHTS), p=list(WEIGHTS.values())))
    folder = root / f"case_{index:05d}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cache = world.folder / "cache"
    maker = {
        "vidlearn-train": train_case,
        "vidlearn-stats": stats_case,
        "vidlearn-cache": cache_case,
        "vidlearn-eval": eval_case,
        "vidlearn-predict": predict_case,
        "vidlearn-export": export_case,
        "vidlearn-manifest": manifest_case,
    }[script]
    args, faults = maker(rng, world, folder, cache)
    return Case(index, script, args, faults, str(folder))


def data_case(
    rng: np.random.Generator, world: World, folder: Path, table: dict[str, list[str]]
) -> tuple[list[str], list[str]]:
    image = rng.random() < 0.2
    manifest, faults, extra = broken_manifest(rng, world, folder, image)
    overrides, config = config_faults(rng, table)
    data = ["data=image_csv"] if image else []
    args = [*data, f"data.manifest={manifest}", *extra, *overrides]
    if image:
        args = [a for a in args if not a.startswith("data.frames=")]
    return args, faults + config + (["images"] if image else [])


def train_case(rng, world, folder, cache):
    args, faults = data_case(rng, world, folder, TRAIN_OVERRIDES)
    base = train_args(folder, cache)
    if any(a.startswith("data=image") for a in args):
        base = [a for a in base if not a.startswith("data.frames=")]
    return base[:3] + [a for a in args if a.startswith("data=")] + base[3:] + [
        a for a in args if not a.startswith("data=")
    ], faults


def stats_case(rng, world, folder, cache):
    args, faults = data_case(rng, world, folder, DATA_OVERRIDES)
    extra = []
    if rng.random() < 0.3:
        value = pick(rng, ["[nope]", "[label]", "[split]", "abc", "[]"])
        extra.append(f"stats.group_by={value}")
        faults.append("config:stats.group_by")
    if rng.random() < 0.2:
        extra.append(f"stats.max_listed={pick(rng, ['-1', '0', 'abc'])}")
        faults.append("config:stats.max_listed")
    head = [a for a in args if a.startswith("data=")]
    rest = [a for a in args if not a.startswith("data=")]
    tiny = [t for t in TINY if not (head and t.startswith("data.frames="))]
    return [
        *head,
        f"paths.cache_dir={cache}",
        f"out={folder / 'stats'}",
        "progress=false",
        *tiny,
        *rest,
        *extra,
    ], faults


def cache_case(rng, world, folder, cache):
    args, faults = data_case(rng, world, folder, DATA_OVERRIDES)
    head = [a for a in args if a.startswith("data=")]
    rest = [a for a in args if not a.startswith("data=")]
    frame_cache = f"data.frame_cache={folder / 'frames'}"
    extra = [f"workers={pick(rng, ['0', '0', '0', '-1', 'abc', 'null', '1.5'])}"]
    if rng.random() < 0.2:
        extra.append(f"splits={pick(rng, ['[foo]', '[]', 'train', 'null'])}")
        faults.append("config:splits")
    if rng.random() < 0.15:
        frame_cache = pick(rng, ["data.frame_cache=null", f"data.frame_cache={world.videos[0]}"])
        faults.append("config:data.frame_cache")
    tiny = [t for t in TINY if not (head and t.startswith("data.frames="))]
    return [
        *head,
        f"paths.cache_dir={cache}",
        "progress=false",
        *tiny,
        frame_cache,
        *rest,
        *extra,
    ], faults


def eval_case(rng, world, folder, cache):
    faults: list[str] = []
    ckpt = checkpoint_arg(rng, world, faults)
    args, data_faults = data_case(rng, world, folder, DATA_OVERRIDES)
    faults += data_faults
    extra = []
    if rng.random() < 0.3:
        extra.append(f"split={pick(rng, ['train', 'val', 'foo', '', 'null'])}")
        faults.append("config:split")
    drawn, drawn_faults = some_overrides(
        rng,
        {
            "batch_size": ["0", "-1", "abc", "null", "1000000000000"],
            "views.hop": ["0", "-1", "abc", "1.5"],
            "views.crops": ["0", "3", "nan"],
            "data.normalise_on_device": ["true", "abc"],
            "device": ["foo", "cuda", "cuda:7", "mps"],
            "out": [str(world.videos[0]), "/proc/nope", "''"],
        },
        0.12,
    )
    extra += drawn
    faults += drawn_faults
    head = [a for a in args if a.startswith("data=")]
    rest = [a for a in args if not a.startswith("data=")]
    tiny = [t for t in TINY if not (head and t.startswith("data.frames="))]
    return [
        *head,
        f"ckpt={ckpt}",
        f"paths.cache_dir={cache}",
        f"out={folder / 'eval'}",
        "progress=false",
        *tiny,
        *rest,
        *extra,
    ], faults


def predict_case(rng, world, folder, cache):
    faults: list[str] = []
    ckpt = checkpoint_arg(rng, world, faults)
    kind = pick(rng, ["video", "folder", "bad_file", "missing", "empty_folder", "csv", "image"])
    faults.append(f"input:{kind}")
    files = folder / "inputs"
    files.mkdir()
    if kind == "video":
        target = str(world.videos[0])
    elif kind == "folder":
        for name in rng.choice(list(world.bad), size=3, replace=False):
            shutil.copyfile(world.bad[str(name)], files / str(name))
        shutil.copyfile(world.videos[1], files / "good.mp4")
        target = str(files)
    elif kind == "bad_file":
        target = str(world.bad[pick(rng, list(world.bad))])
    elif kind == "missing":
        target = str(folder / "nope.mp4")
    elif kind == "empty_folder":
        target = str(files)
    elif kind == "image":
        target = str(world.images[0])
    else:
        manifest, manifest_faults, _ = broken_manifest(rng, world, folder)
        faults += manifest_faults
        target = str(manifest)
    extra = []
    drawn, drawn_faults = some_overrides(
        rng,
        {
            "top_k": ["0", "-1", "100", "abc", "null"],
            "batch_size": ["0", "-1", "abc", "null"],
            "views.hop": ["0", "-1", "abc"],
            "views.crops": ["0", "3", "nan"],
            "frame_cache_max_gb": ["nan", "abc", "-1"],
            "path_column": ["nope", "label", "''"],
            "out": [str(world.videos[0] / "x.csv"), str(folder), "/proc/nope.csv"],
            "device": ["foo", "cuda"],
        },
        0.12,
    )
    extra += drawn
    faults += drawn_faults
    return [
        f"ckpt={ckpt}",
        f"input={target}",
        f"out={folder / 'predictions.csv'}",
        "progress=false",
        *extra,
    ], faults


def export_case(rng, world, folder, cache):
    faults: list[str] = []
    ckpt = checkpoint_arg(rng, world, faults)
    extra = [f"out={folder / 'model.pt'}"]
    drawn, drawn_faults = some_overrides(
        rng,
        {
            "format": ["onnx", "foo", "''", "null", "TORCHSCRIPT"],
            "tolerance": ["-1", "0", "abc", "null", "nan", "inf"],
            "+tolerence": ["1e-3"],
            "out": [str(folder / "missing_dir" / "m.pt"), str(folder), "/proc/m.pt", "''"],
            "seed": ["abc", "-1", "1.5"],
        },
        0.2,
    )
    extra += drawn
    faults += drawn_faults
    return [f"ckpt={ckpt}", *extra], faults


def manifest_case(rng, world, folder, cache):
    images = folder / "images"
    images.mkdir()
    for source in world.images:
        shutil.copyfile(source, images / source.name)
    labels_dir = folder / "labels"
    labels_dir.mkdir()
    manifest, faults, _ = broken_manifest(rng, world, labels_dir, image=True)
    # Label CSVs name files by their name inside the tranche folder.
    text = manifest.read_bytes() if manifest.is_file() else None
    if text is not None:
        for i, source in enumerate(world.images):
            text = text.replace(f"files/{i}.jpg".encode(), source.name.encode())
        manifest.write_bytes(text)
    tranche = f"1={images}:{manifest}"
    if rng.random() < 0.15:
        tranche = pick(rng, ["1", "=a:b", f"1={folder / 'nope'}:{manifest}", f"1={images}:", ":"])
        faults.append("arg:tranche")
    args = ["merge", "--tranche", tranche, "--out", str(folder / "master.csv")]
    if rng.random() < 0.3:
        args += ["--tranche", f"2={images}:{manifest}"]
        faults.append("arg:second_tranche")
    for flag, values in {
        "--file-column": ["nope", "label", "''", "split"],
        "--key": ["name", "path", "foo"],
        "--encoding": ["foo", "utf-16", "latin-1", "ascii", ""],
        "--tranche-column": ["path", "label", ""],
        "--out": [str(folder), str(folder / "missing" / "m.csv"), "/proc/m.csv"],
    }.items():
        if rng.random() < 0.12:
            args += [flag, pick(rng, values)]
            faults.append(f"arg:{flag}")
    return args, faults


# ---------------------------------------------------------------------------------------------
# Running and classifying.


class CaseTimeout(BaseException):
    """Raised by the alarm when a case runs past --case-timeout (not an Exception on purpose)."""


def run_in_process(script: str, args: list[str], cwd: Path) -> tuple[Any, str]:
    """Call `script`'s main with sys.argv patched, in `cwd`; (exit code, captured stderr).

    An exception escaping main is printed as Python would print it, with code 1.
    """
    import traceback

    module = importlib.import_module(MODULES[script])
    err = io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = [script, *args]
    code: Any = 0
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                returned = module.main()
                code = returned if script == "vidlearn-manifest" else 0
            except SystemExit as stop:
                code = stop.code
            except CaseTimeout:
                raise
            except BaseException:  # what would reach the interpreter: a traceback
                traceback.print_exc(file=err)
                code = 1
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        logging.shutdown()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    return code, err.getvalue()


def run_subprocess(script: str, args: list[str], cwd: Path, timeout: float) -> tuple[Any, str]:
    """Run the real console script; (exit code, stderr)."""
    binary = Path(sys.executable).parent / script
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(
        [str(binary), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return done.returncode, done.stderr


def classify(code: Any, stderr: str) -> str:
    """ok / clean_error / traceback, as defined in the module docstring."""
    code = 0 if code is None else code
    if "Traceback" in stderr:
        return "traceback"
    if code == 0:
        return "ok"
    if code == 2 and stderr.strip():
        return "clean_error"
    return "traceback"


def traceback_tail(stderr: str, lines: int = 12) -> list[str]:
    return [line for line in stderr.strip().splitlines() if line.strip()][-lines:]


def run_case(case: Case, timeout: float) -> Result:
    def alarm(*_: Any) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(timeout))
    start = time.perf_counter()
    try:
        code, err = run_in_process(case.script, case.args, Path(case.folder))
        outcome = classify(code, err)
    except CaseTimeout:
        code, err, outcome = None, "", "timeout"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    tail = traceback_tail(err) if outcome in ("traceback", "timeout") else []
    return Result(case, outcome, code, round(seconds, 2), tail)


def environment() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "vidlearn"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "date": datetime.date.today().isoformat(),
        "commit": commit + ("+dirty" if dirty else ""),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="index of the first case")
    parser.add_argument("--only", default="", help="comma-separated case indices to run")
    parser.add_argument("--subprocess", type=int, default=0, help="cases re-run as subprocesses")
    parser.add_argument("--case-timeout", type=float, default=180.0)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/results/fuzz_cli.json")
    parser.add_argument("--work", type=Path, default=None, help="folder for generated files")
    parser.add_argument("--keep", action="store_true", help="keep every case's files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    os.environ.pop("HYDRA_FULL_ERROR", None)
    work = args.work or Path(tempfile.mkdtemp(prefix="vidlearn_fuzz_"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    world = build_world(work / "world")
    setup_seconds = time.perf_counter() - start
    indices = (
        [int(i) for i in args.only.split(",")]
        if args.only
        else range(args.first, args.first + args.cases)
    )
    results: list[Result] = []
    for index in indices:
        case = make_case(index, args.seed, world, work / "cases")
        result = run_case(case, args.case_timeout)
        results.append(result)
        print(
            f"{index:5d} {result.outcome:12s} {result.seconds:6.1f}s {case.script} "
            f"{','.join(case.faults)}",
            flush=True,
        )
        clean = result.outcome in ("ok", "clean_error")
        if clean and not args.keep and len(results) > args.subprocess:
            shutil.rmtree(case.folder, ignore_errors=True)
    checks = []
    for result in results[: args.subprocess]:
        case = result.case
        code, err = run_subprocess(case.script, case.args, Path(case.folder), args.case_timeout)
        outcome = classify(code, err)
        checks.append(
            {
                "index": case.index,
                "script": case.script,
                "in_process": result.outcome,
                "subprocess": outcome,
                "codes": [result.code, code],
                "agree": outcome == result.outcome,
            }
        )
        print(f"subprocess {case.index}: {result.outcome} / {outcome}", flush=True)
    by_script: dict[str, Counter] = {}
    for result in results:
        by_script.setdefault(result.case.script, Counter())[result.outcome] += 1
    record = {
        "environment": environment(),
        "seed": args.seed,
        "cases": len(results),
        "counts": dict(Counter(result.outcome for result in results)),
        "by_script": {script: dict(counts) for script, counts in sorted(by_script.items())},
        "seconds": round(time.perf_counter() - start, 1),
        "setup_seconds": round(setup_seconds, 1),
        "subprocess_checks": checks,
        "tracebacks": [
            {**asdict(r.case), "outcome": r.outcome, "code": r.code, "tail": r.tail}
            for r in results
            if r.outcome in ("traceback", "timeout")
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=str))
    print(json.dumps({k: record[k] for k in ("cases", "counts", "seconds")}))
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return record


if __name__ == "__main__":
    main()
