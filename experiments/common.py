"""Helpers shared by the experiment scripts: config composition, run records, result files.

    from common import compose_train, run_train, environment, write_result   # experiments/ on sys.path

`compose_train` builds conf/train.yaml with overrides in-process (as `vidlearn-train` would on the
command line, minus Hydra's run directory, which is given explicitly); `run_train` also trains and
times it. `environment` records machine, date, versions and git commit; `write_result` writes the
JSON record to experiments/results/<name>.json and the Markdown block to <name>.md beside it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
# Every training run of a reproduction: on CPU, no progress bar (logs stay readable).
QUIET = ("~callbacks.progress_bar",)


def compose_train(overrides: Sequence[str], output_dir: Path) -> Any:
    """conf/train.yaml composed with `overrides`; the run writes into `output_dir`."""
    from hydra import compose, initialize_config_dir

    import vidlearn.cli.demo  # noqa: F401  (registers the ${demo:...} resolver)
    from vidlearn.cli.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}", *QUIET, *overrides])


def run_train(overrides: Sequence[str], output_dir: Path) -> tuple[dict[str, Any], float]:
    """Train (and test) one configuration; (summary dict of vidlearn.cli.train.train, wall s)."""
    from vidlearn.cli.train import train

    cfg = compose_train(overrides, output_dir)
    start = time.perf_counter()
    summary = train(cfg)
    return summary, time.perf_counter() - start


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform's answer."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str = "cpu") -> dict[str, Any]:
    """Machine, date, library versions and vidlearn commit (with a dirty flag) of this run."""
    import torch

    from vidlearn.cli.run_files import package_versions

    machine = f"{cpu_name()}, {platform.machine()}, {len(os.sched_getaffinity(0))} cores available"
    if device.startswith("cuda") and torch.cuda.is_available():
        machine += f", GPU {torch.cuda.get_device_name(0)}"
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "date": datetime.date.today().isoformat(),
        "machine": machine,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {k: v for k, v in package_versions().items() if v is not None},
        "commit": (commit + (" (uncommitted changes)" if dirty else "")) or "unknown",
        "command": "python "
        + " ".join(shlex.quote(a) for a in [_relative(sys.argv[0]), *sys.argv[1:]]),
    }


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats with 3 decimals."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, record: dict[str, Any], markdown: str, out: Path | None = None) -> Path:
    """experiments/results/<name>.json (the record) and <name>.md (the README block); JSON path."""
    folder = out or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    env = record.get("environment", {})
    header = (
        f"Command: `{env.get('command', '')}`  \n"
        f"Machine: {env.get('machine', '')}; date {env.get('date', '')}; vidlearn commit "
        f"{env.get('commit', '')}; torch {env.get('versions', {}).get('torch', '')}, "
        f"pytorch-lightning {env.get('versions', {}).get('pytorch-lightning', '')}.\n\n"
    )
    (folder / f"{name}.md").write_text(header + markdown + "\n")
    print(header + markdown)
    print(f"\nwritten: {path}")
    return path


def per_class_recall(metrics: dict[str, float], split: str = "test") -> dict[str, float]:
    """{class: recall} from a summary's `<split>/recall/<class>` metrics."""
    prefix = f"{split}/recall/"
    return {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}


def run_variants(
    variants: dict[str, Sequence[str]], common: Sequence[str], out_root: Path
) -> dict[str, dict[str, Any]]:
    """Train and test each named variant (`common` overrides, then the variant's own), in turn.

    Returns {name: {"overrides", "wall_s", "metrics" (test/* and val/*), "epochs", "run_dir",
    "best_checkpoint", "num_train", "num_test"}}.
    """
    results: dict[str, dict[str, Any]] = {}
    for name, overrides in variants.items():
        run_dir = out_root / name
        print(f"== {name}: {' '.join([*common, *overrides])}", flush=True)
        summary, wall = run_train([*common, *overrides], run_dir)
        results[name] = {
            "overrides": [*common, *overrides],
            "wall_s": wall,
            "metrics": summary["metrics"],
            "epochs": summary["epochs"],
            "run_dir": str(run_dir),
            "best_checkpoint": summary["best_checkpoint"],
            "num_train": summary["num_train"],
            "num_test": summary["num_test"],
            "classes": summary["classes"],
        }
        test = summary["metrics"]
        print(
            f"== {name}: test accuracy {test.get('test/accuracy', float('nan')):.3f}, balanced "
            f"{test.get('test/balanced_accuracy', float('nan')):.3f}, {wall:.0f} s",
            flush=True,
        )
    return results


def metrics_rows(results: dict[str, dict[str, Any]], classes: Sequence[str]) -> list[list[Any]]:
    """One table row per variant: accuracy, balanced accuracy, recall per class (test), wall s."""
    rows = []
    for name, result in results.items():
        metrics = result["metrics"]
        recall = per_class_recall(metrics)
        rows.append(
            [
                name,
                metrics.get("test/accuracy", float("nan")),
                metrics.get("test/balanced_accuracy", float("nan")),
                *[recall.get(c, float("nan")) for c in classes],
                result["epochs"],
                f"{result['wall_s']:.0f}",
            ]
        )
    return rows
