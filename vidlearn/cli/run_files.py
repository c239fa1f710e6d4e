"""Provenance of a run: installed package versions, git commit, command-line overrides.

Written to the run directory as provenance.json beside config.yaml, so a result can be traced to
the code and libraries that produced it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig

# Distributions whose versions change results or speed (pip names).
PACKAGES = (
    "vidlearn",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "decord",
    "av",
    "albumentations",
    "numpy",
    "pandas",
)


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution; None when it is not installed."""
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(source: Path) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the git checkout that tracks the file `source`; None when none does
    (an installed wheel, even in a venv inside another repository) or git is missing."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(source.parent), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", source.name)
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.SubprocessError):
        return None


def overrides() -> list[str] | None:
    """The command-line overrides of this Hydra job; None when train() was called without Hydra's
    entry point (then config.yaml is the only record of the settings)."""
    if not HydraConfig.initialized():
        return None
    return list(HydraConfig.get().overrides.task)


def write_provenance(run_dir: Path) -> Path:
    """Write run_dir/provenance.json: versions, python, git state, overrides, command line."""
    record = {
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "git": git_state(Path(__file__).resolve()),
        "overrides": overrides(),
        "argv": sys.argv,
    }
    target = run_dir / "provenance.json"
    target.write_text(json.dumps(record, indent=2))
    return target
