"""`vidlearn-demo`: write the built-in demo data sets, and find or make them for other commands.

    vidlearn-demo out=DIR                # videos, images and cine arrays
    vidlearn-demo out=DIR kind=videos seed=3

Configs refer to the demo data with the `${demo:KIND,CACHE_DIR}` resolver, which generates the
data set into CACHE_DIR on first use and returns its manifest path.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vidlearn.cli.console import console_main
from vidlearn.demo import demo_is_complete, make_cine, make_images, make_videos
from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)

GENERATORS: dict[str, Callable[..., Path]] = {
    "videos": make_videos,
    "images": make_images,
    "cine": make_cine,
}
# Bump when a generator's output changes, so caches made by older versions are not reused.
DEMO_VERSION = 1


def ensure_demo(kind: str, cache_dir: str | Path, seed: int = 0) -> Path:
    """Return the manifest of demo data set `kind` in `cache_dir`, generating it if missing.

    Generation happens in a temporary sibling folder that is renamed into place at the end, so
    a killed run or a concurrent process never leaves a half-written data set behind.
    """
    if kind not in GENERATORS:
        raise ConfigError(
            f"demo data set {kind!r} (in ${{demo:{kind},...}}) is not one of {sorted(GENERATORS)}"
        )
    target = Path(cache_dir).expanduser() / f"demo-{kind}-v{DEMO_VERSION}-seed{seed}"
    if not demo_is_complete(target, GENERATORS[kind], seed=seed):
        target.parent.mkdir(parents=True, exist_ok=True)
        logger.info("generating demo %s into %s (first use only)", kind, target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            GENERATORS[kind](staging, seed=seed)
            if not demo_is_complete(target, GENERATORS[kind], seed=seed):
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    manifest = target / ("labels.csv" if kind == "cine" else "manifest.csv")
    logger.info("demo %s: %s", kind, manifest)
    return manifest


def _demo_resolver(kind: str, cache_dir: str) -> str:
    return str(ensure_demo(kind, cache_dir))


if not OmegaConf.has_resolver("demo"):
    OmegaConf.register_new_resolver("demo", _demo_resolver, use_cache=True)


@console_main("demo")
def main(cfg: DictConfig) -> None:
    """Write demo data set(s) into cfg.out."""
    kinds = sorted(GENERATORS) if cfg.kind == "all" else [cfg.kind]
    for kind in kinds:
        if kind not in GENERATORS:
            raise ConfigError(f"kind={kind} is not one of all, {', '.join(sorted(GENERATORS))}.")
        out = Path(cfg.out).expanduser() / kind if len(kinds) > 1 else Path(cfg.out).expanduser()
        manifest = GENERATORS[kind](out, seed=cfg.seed)
        print(f"{kind}: {manifest}")
