"""`vidlearn-cache`: fill the frame cache ahead of training, in parallel, and report it.

    vidlearn-cache data.frame_cache=/scratch/frames data.manifest=clips.csv data.size=112
    vidlearn-cache experiment=hms_video_gru data.frame_cache=/scratch/frames workers=8

Composed from the train config (conf/cache.yaml includes conf/train.yaml), so the data
settings, and with them the cache entries, are exactly the ones training will look up. Prints
a progress bar, then one table: videos, decoded now, frames, GB, seconds, bad files; and the
bad files with their reasons.
"""

from __future__ import annotations

import pandas as pd
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import Progress

import vidlearn.cli.demo  # noqa: F401  (registers the ${demo:...} resolver)
from vidlearn.cli.console import console_main
from vidlearn.data.cache_fill import FillReport, fill_videos
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.errors import ConfigError
from vidlearn.reports.tables import rich_table


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
    # No probe: filling decodes every frame of every file anyway, and lists the ones it cannot.
    label_kind = get_class(cfg.task._target_).label_kind
    datamodule = instantiate(cfg.data, label_kind=label_kind, probe=False)
    datamodule.setup("fit")
    table = datamodule.table
    paths = table.loc[table["split"].isin(list(cfg.splits)), "path"].tolist()
    with Progress(disable=not cfg.progress, transient=True) as bar:
        task = bar.add_task("decoding into the frame cache", total=len(set(paths)))
        report = fill_videos(datamodule.frame_cache, paths, cfg.workers, lambda: bar.advance(task))
    console = Console()
    console.print(rich_table(report_table(report), title=f"frame cache {cfg.data.frame_cache}"))
    if report.bad:
        bad = pd.DataFrame({"file": list(report.bad), "reason": list(report.bad.values())})
        console.print(rich_table(bad, title="files that cannot be decoded"))
    return report


def report_table(report: FillReport) -> pd.DataFrame:
    """One row: videos cached, decoded now, frames, GB, seconds, bad files."""
    return pd.DataFrame(
        [
            {
                "videos": report.videos,
                "decoded now": report.decoded,
                "frames": report.frames,
                "GB": round(report.nbytes / 1e9, 3),
                "seconds": round(report.seconds, 1),
                "bad files": len(report.bad),
            }
        ]
    )


@console_main("cache")
def main(cfg: DictConfig) -> None:
    run_cache(cfg)


if __name__ == "__main__":
    main()
