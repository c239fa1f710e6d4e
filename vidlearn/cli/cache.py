"""`vidlearn-cache`: fill the frame cache ahead of training, in parallel, and report it.

    vidlearn-cache data.frame_cache=/scratch/frames data.manifest=clips.csv data.size=112
    vidlearn-cache experiment=hms_video_gru data.frame_cache=/scratch/frames workers=8

Composed from the train config (conf/cache.yaml includes conf/train.yaml), so the data
settings, and with them the cache entries, are exactly the ones training will look up. The
rows come from the same row stage as training (vidlearn.data.rows), probe included: each video
is decoded with the backend the probe chose for it, and the files the probe refuses are listed
as bad without being decoded. Prints a progress bar, then one table: videos, decoded now,
frames, GB, seconds, videos per backend, bad files; and the bad files (paths relative to the
manifest's folder) with their reasons.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import Progress

import vidlearn.cli.demo  # noqa: F401  (registers the ${demo:...} resolver)
from vidlearn.cli.console import console_main
from vidlearn.data.cache_fill import FillReport, fill_videos
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.rows import Rows
from vidlearn.errors import ConfigError
from vidlearn.reports.tables import rich_table

BAD_TITLE = "bad files (training skips them)"


def run_cache(cfg: DictConfig) -> FillReport:
    """Fill `cfg.data.frame_cache` with the videos of `cfg.splits`; returns the totals."""
    if not issubclass(get_class(cfg.data._target_), VideoDataModule):
        raise ConfigError(
            f"data={cfg.data._target_} reads images; the frame cache holds video frames: "
            "pick a video data group (data=video_csv or data=video_folder)"
        )
    if not cfg.data.get("frame_cache"):
        raise ConfigError(
            "data.frame_cache is null: give the cache folder, e.g. data.frame_cache=/scratch/frames "
            "(and the same value to vidlearn-train)"
        )
    label_kind = get_class(cfg.task._target_).label_kind
    # Every bad file is listed here; their share stops training, not this listing.
    datamodule = instantiate(cfg.data, label_kind=label_kind, max_bad_fraction=1.0)
    rows = datamodule.build_rows(workers=cfg.workers)
    splits = list(cfg.splits)
    files = files_to_fill(rows, splits, datamodule.backend)
    with Progress(disable=not cfg.progress, transient=True) as bar:
        task = bar.add_task("decoding into the frame cache", total=len(files))
        report = fill_videos(datamodule.frame_cache, files, cfg.workers, lambda: bar.advance(task))
    refused = rows.probe_skipped[rows.probe_skipped["split"].isin(splits)]
    report.bad = dict(zip(refused["path"], refused["reason"], strict=True)) | report.bad
    print_report(report, cfg.data.frame_cache, rows.source)
    return report


def files_to_fill(rows: Rows, splits: list[str], backend: str) -> dict[str, str]:
    """Path -> backend of each usable video of `splits`: the probe's choice, else `backend`."""
    table = rows.table[rows.table["split"].isin(splits)]
    backends = table["backend"] if "backend" in table.columns else [backend] * len(table)
    return dict(zip(table["path"].astype(str), backends, strict=True))


def print_report(report: FillReport, folder: str, source: Path) -> None:
    """The totals table, then the bad files with paths relative to the manifest's folder."""
    console = Console()
    console.print(rich_table(report_table(report), title=f"frame cache {folder}"))
    if report.bad:
        base = source if source.is_dir() else source.parent
        shown = [relative_to(path, base) for path in report.bad]
        bad = pd.DataFrame({"file": shown, "reason": list(report.bad.values())})
        console.print(rich_table(bad, title=BAD_TITLE))


def relative_to(path: str, base: Path) -> str:
    """`path` relative to `base` when it lies inside it, else as given."""
    relative = os.path.relpath(path, base)
    return path if relative.startswith(os.pardir) else relative


def report_table(report: FillReport) -> pd.DataFrame:
    """One row: videos cached, decoded now, frames, GB, seconds, videos per backend, bad files."""
    backends = ", ".join(f"{name} {count}" for name, count in sorted(report.backends.items()))
    return pd.DataFrame(
        [
            {
                "videos": report.videos,
                "decoded now": report.decoded,
                "frames": report.frames,
                "GB": round(report.nbytes / 1e9, 3),
                "seconds": round(report.seconds, 1),
                "backends": backends or "-",
                "bad files": len(report.bad),
            }
        ]
    )


@console_main("cache")
def main(cfg: DictConfig) -> None:
    run_cache(cfg)


if __name__ == "__main__":
    main()
