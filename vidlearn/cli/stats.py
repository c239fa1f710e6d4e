"""`vidlearn-stats`: a dataset report before training, from the same data group as training.

    vidlearn-stats                                                    # the demo videos
    vidlearn-stats data=image_csv data.manifest=master.csv data.label_column=primary_posture \\
        'data.filter="num_people == 1"' stats.group_by=[tranche] out=stats_posture

Writes to `out` (default ./stats): report.md with class counts per split and per
`stats.group_by` column, the removed rows and why, video facts and unreadable videos, and the
expected class frequencies per epoch under `sampler`; counts_<column>.png, videos.png,
label_histogram.png (regression) and CSV listings. Prints the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import track

import vidlearn.cli.demo  # noqa: F401  (registers the ${demo:...} resolver)
from vidlearn.cli.console import console_main
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.probe_index import ProbeCache
from vidlearn.reports.dataset import (
    DatasetReport,
    describe_dataset,
    report_tables,
    write_dataset_report,
)
from vidlearn.reports.tables import rich_table


def run_stats(cfg: DictConfig) -> DatasetReport:
    """Run `cfg` (conf/stats.yaml); returns the report that was written to `out`."""
    out = Path(cfg.out)
    label_kind = get_class(cfg.task._target_).label_kind
    datamodule = instantiate(cfg.data, label_kind=label_kind)
    datamodule.setup("fit")
    probe_cache = None
    if cfg.stats.probe and issubclass(get_class(cfg.data._target_), VideoDataModule):
        # The training probe's index when there is one: files it probed are not opened again.
        index = cfg.stats.probe_cache or cfg.data.get("probe_index") or out / "probes.sqlite"
        probe_cache = ProbeCache(index)

    def progress(items: Iterable[int]) -> Iterable[int]:
        return track(items, description="probing videos", disable=not cfg.progress, transient=True)

    report = describe_dataset(
        datamodule,
        instantiate(cfg.sampler) if cfg.get("sampler") else None,
        group_by=list(cfg.stats.group_by),
        probe_cache=probe_cache,
        shown_columns=[cfg.data.get("path_column", "path"), cfg.data.get("label_column", "label")],
        progress=progress,
    )
    target = write_dataset_report(report, out, limit=cfg.stats.max_listed)
    console = Console()
    for title, table in report_tables(report, limit=20):
        console.print(rich_table(table, title=title) if len(table) else f"{title}: none")
    console.print(f"report: {target}")
    return report


@console_main("stats")
def main(cfg: DictConfig) -> None:
    run_stats(cfg)


if __name__ == "__main__":
    main()
