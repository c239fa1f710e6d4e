"""A dataset report before training: what a DataModule will feed the model, and what it left out.

`describe_dataset` reads a set-up DataModule: rows per class and split (and per any grouping
column, e.g. a `tranche`), the label histogram of a regression target, the rows the manifest
filter removed and why, the header facts of every video (probed once, cached in a ProbeCache)
with the files that could not be read, and the expected class frequencies per epoch under the
training sampler. `write_dataset_report` writes it as report.md, CSV files and PNG charts;
`report_tables` gives the same tables for the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from torch.utils.data import Sampler

from vidlearn.data.datamodules import ManifestDataModule
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.samplers import expected_frequencies
from vidlearn.data.splits import SPLITS
from vidlearn.data.video import DecodeError
from vidlearn.errors import ConfigError
from vidlearn.reports.plots import _save, plot_counts
from vidlearn.reports.tables import markdown_table

logger = logging.getLogger(__name__)

ALL = "all"  # name of the margin row and column of the count tables
BLANK = "(blank)"  # a grouping cell with no value
PROBE_COLUMNS = ("num_frames", "fps", "height", "width", "duration_s", "codec")


@dataclass
class DatasetReport:
    """The tables of a dataset report; None where a part does not apply (e.g. probes of images).

    `counts[column]`: classes (rows, plus "all") by values of `column` (plus "all"); for a
    regression target, one row per value of `column` with the target's count, mean, std, min
    and max. `dropped`: removed rows with `line`, the path and label cells as written, `reason`.
    `probes`: one row per usable video (`path`, `split`, VideoInfo fields, `resolution`);
    `unreadable`: `path`, `line`, `split`, `error` of each video that could not be probed.
    `sampler`: per class (or label bin) of the training split: `count`, `natural`, `sampled`.
    """

    source: str
    label_kind: str
    num_rows: int
    counts: dict[str, pd.DataFrame]
    dropped: pd.DataFrame
    labels: pd.DataFrame | None = None
    probes: pd.DataFrame | None = None
    unreadable: pd.DataFrame = field(default_factory=pd.DataFrame)
    sampler_name: str | None = None
    sampler: pd.DataFrame | None = None


def class_counts(table: pd.DataFrame, column: str, classes: Sequence[str] = ()) -> pd.DataFrame:
    """Rows per class (index) and value of `column` (columns), with "all" margins.

    Classes are in `classes` order (the model's target order) when given, splits in train,
    val, test order; blank cells of `column` are counted under "(blank)".
    """
    _require_column(table, column)
    groups = table[column]
    if groups.isna().any():
        groups = groups.astype(object).where(groups.notna(), BLANK)
    counts = pd.crosstab(
        table["label"].astype(str).rename("class"), groups, margins=True, margins_name=ALL
    )
    if classes:
        present = [name for name in classes if name in counts.index]
        counts = counts.loc[present + [ALL]]
    if column == "split":
        counts = counts[[name for name in (*SPLITS, ALL) if name in counts.columns]]
    return counts


def target_summary(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """A numeric target's count, mean, std, min and max per value of `column`, then "all"."""
    _require_column(table, column)
    values = pd.to_numeric(table["target"], errors="coerce")
    groups = table[column].astype(object).where(table[column].notna(), BLANK)
    per_group = values.groupby(groups).agg(["count", "mean", "std", "min", "max"])
    overall = values.agg(["count", "mean", "std", "min", "max"]).to_frame(ALL).T
    per_group.index = per_group.index.astype(str)
    summary = pd.concat([per_group, overall]).rename_axis(column)
    return summary.astype({"count": np.int64})


def _require_column(table: pd.DataFrame, column: str) -> None:
    if column not in table.columns:
        usable = [c for c in table.columns if c not in ("path", "line", "target")]
        raise ConfigError(
            f"stats.group_by: no column {column!r} in the manifest; group by one of {usable}"
        )


def dropped_rows(dropped: pd.DataFrame, columns: Sequence[str] = ()) -> pd.DataFrame:
    """The removed rows, by line: `line`, those of `columns` it has (e.g. path, label), `reason`."""
    if dropped.empty:
        return pd.DataFrame(columns=["line", *columns, "reason"])
    keep = ["line", *(c for c in columns if c in dropped.columns and c != "line"), "reason"]
    return dropped[[c for c in keep if c in dropped.columns]].sort_values("line", kind="stable")


def probe_videos(
    rows: pd.DataFrame,
    cache: ProbeCache,
    backend: str,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(probes, unreadable): the VideoInfo of each row's file, and the files that failed.

    `rows` needs `path`, `line` and `split`. Each file is probed once: the cache keeps the facts
    by path, size and modification time, so a second report (or run) reads no video again.
    """
    facts, failures = [], []
    for index in progress(range(len(rows))):
        row = rows.iloc[index]
        try:
            # A row the DataModule probed carries the backend chosen for it (backend=auto).
            info = cache.probe(row["path"], row.get("backend") or backend)
        except DecodeError as error:
            failures.append(
                {
                    "path": row["path"],
                    "line": row["line"],
                    "split": row["split"],
                    "error": str(error),
                }
            )
            continue
        facts.append(
            {"path": row["path"], "split": row["split"]}
            | {name: getattr(info, name) for name in PROBE_COLUMNS}
        )
    probes = pd.DataFrame(facts, columns=["path", "split", *PROBE_COLUMNS])
    probes["resolution"] = probes["width"].astype(str) + "x" + probes["height"].astype(str)
    unreadable = pd.DataFrame(failures, columns=["path", "line", "split", "error"])
    return probes, unreadable


def value_counts(probes: pd.DataFrame, column: str) -> pd.DataFrame:
    """Files per distinct value of a probe column (e.g. resolution, codec), most common first."""
    values = probes[column].fillna("unknown").astype(str)
    return values.value_counts().rename("files").rename_axis(column).reset_index()


def numeric_summary(probes: pd.DataFrame) -> pd.DataFrame:
    """min, median, mean and max of duration, fps and frame count over the probed videos."""
    rows = []
    for column in ("duration_s", "fps", "num_frames"):
        values = pd.to_numeric(probes[column], errors="coerce").dropna()
        if len(values):
            rows.append({"fact": column} | values.agg(["min", "median", "mean", "max"]).to_dict())
    return pd.DataFrame(rows, columns=["fact", "min", "median", "mean", "max"])


def sampler_frequencies(
    sampler: Sampler[int] | None, targets: np.ndarray, classes: Sequence[str] = ()
) -> pd.DataFrame:
    """Per class (or label bin): training `count`, `natural` share and expected `sampled` share.

    Rows are named by `classes` (class indices map to names) or, without, by the sampler's
    groups, e.g. the label bins of a regression target.

    Weighted samplers report `.frequencies`; any other sampler draws every item equally often
    per epoch, so its expected share is the natural one.
    """
    frequencies = getattr(sampler, "frequencies", None)
    if frequencies is None:
        frequencies = expected_frequencies(np.asarray(targets), np.ones(len(targets)))
    frequencies = frequencies.copy()
    if classes:
        frequencies.index = pd.Index([classes[int(group)] for group in frequencies.index])
        return frequencies.rename_axis("class")
    frequencies.index = frequencies.index.astype(str)
    return frequencies.rename_axis("bin")


def describe_dataset(
    datamodule: ManifestDataModule,
    sampler_factory: Callable[..., Sampler[int]] | None,
    group_by: Sequence[str] = (),
    probe_cache: ProbeCache | None = None,
    shown_columns: Sequence[str] = (),
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
) -> DatasetReport:
    """Build the report of a set-up ManifestDataModule.

    The sampler is built as the DataModule builds it for training, `sampler_factory(targets=,
    table=)` on the train split (None: report natural frequencies). Videos are probed when
    `probe_cache` is given. `shown_columns` picks the cells listed for each removed row.
    """
    table = datamodule.table
    label_kind = datamodule.label_kind
    classes = list(datamodule.classes)
    by = ["split", *(column for column in group_by if column != "split")]
    if label_kind == "regression":
        counts = {column: target_summary(table, column) for column in by}
        labels = table[["split", "target"]].rename(columns={"target": "label"})
    else:
        counts = {column: class_counts(table, column, classes) for column in by}
        labels = None

    train = datamodule.split_rows("train")
    targets = np.asarray(train["target"].tolist())
    if sampler_factory is None:
        sampler_name, sampler = "ShuffleSampler", None
    else:
        sampler = sampler_factory(targets=targets, table=train)
        sampler_name = type(sampler).__name__
    frequencies = sampler_frequencies(
        sampler, targets, classes if label_kind != "regression" else ()
    )

    probes, unreadable = None, pd.DataFrame(columns=["path", "line", "split", "error"])
    if probe_cache is not None:
        backend = getattr(datamodule, "backend", "decord")
        probes, unreadable = probe_videos(table, probe_cache, backend, progress)
    dropped_by_probe = datamodule.probe_skipped.rename(columns={"reason": "error"})
    if len(dropped_by_probe):  # the DataModule's own probe (data.probe) removed these rows
        unreadable = pd.concat([dropped_by_probe[unreadable.columns], unreadable])
    if len(unreadable):
        logger.warning("%d files could not be read", len(unreadable))

    manifest = datamodule.manifest
    return DatasetReport(
        source=str(manifest.source),
        label_kind=label_kind,
        num_rows=len(table),
        counts=counts,
        dropped=dropped_rows(manifest.dropped, shown_columns),
        labels=labels,
        probes=probes,
        unreadable=unreadable,
        sampler_name=sampler_name,
        sampler=frequencies,
    )


# -- output ----------------------------------------------------------------------------------
def report_tables(
    report: DatasetReport, limit: int | None = None
) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) pairs in report order, each with its index as the first column.

    `limit` caps the rows of the long listings (removed rows, unreadable files).
    """
    tables = [
        (count_title(report.label_kind, column), counts.reset_index())
        for column, counts in report.counts.items()
    ]
    reasons = report.dropped["reason"].value_counts().rename("rows").rename_axis("reason")
    tables.append((f"removed rows ({len(report.dropped)}) by reason", reasons.reset_index()))
    if len(report.dropped):
        tables.append(_listing("removed rows", report.dropped, limit, "dropped.csv"))
    if report.probes is not None:
        tables.append(("videos: duration, fps, frames", numeric_summary(report.probes)))
        tables.append(("videos: resolution", value_counts(report.probes, "resolution")))
        tables.append(("videos: codec", value_counts(report.probes, "codec")))
        title = f"unreadable videos ({len(report.unreadable)})"
        tables.append(_listing(title, report.unreadable, limit, "unreadable.csv"))
    if report.sampler is not None:
        title = f"expected frequency per epoch, train split, {report.sampler_name}"
        tables.append((title, report.sampler.reset_index()))
    return tables


def _listing(
    title: str, rows: pd.DataFrame, limit: int | None, csv_name: str
) -> tuple[str, pd.DataFrame]:
    """A long listing cut to `limit` rows, its title saying where the rest are."""
    if limit is not None and len(rows) > limit:
        return f"{title}: first {limit} of {len(rows)}, all in {csv_name}", rows.head(limit)
    return title, rows


def count_title(label_kind: str, column: str) -> str:
    """Heading of the count table of one grouping column."""
    return f"label per {column}" if label_kind == "regression" else f"rows per class and {column}"


def plot_probe_histograms(probes: pd.DataFrame, out: Path) -> Path:
    """Histograms of duration and fps, bars of resolution and codec, one panel each."""
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    for axis, column, unit in ((axes[0], "duration_s", "seconds"), (axes[1], "fps", "fps")):
        values = pd.to_numeric(probes[column], errors="coerce").dropna()
        axis.hist(values, bins=min(20, max(1, values.nunique())))
        axis.set(title=column, xlabel=unit, ylabel="videos")
    for axis, column in ((axes[2], "resolution"), (axes[3], "codec")):
        counts = value_counts(probes, column).head(15)
        axis.bar(counts[column], counts["files"])
        axis.set(title=column, ylabel="videos")
        axis.tick_params(axis="x", rotation=45)
    for axis in axes:
        axis.grid(alpha=0.3, axis="y")
    return _save(figure, out)


def plot_label_histogram(labels: pd.DataFrame, out: Path) -> Path:
    """Histogram of a regression target, one overlaid series per split."""
    figure, axis = plt.subplots(figsize=(6, 4))
    values = pd.to_numeric(labels["label"], errors="coerce")
    edges = np.histogram_bin_edges(values.dropna(), bins=20)
    for split, part in labels.groupby("split", sort=False):
        part_values = pd.to_numeric(part["label"], errors="coerce").dropna()
        axis.hist(part_values, bins=edges, alpha=0.6, label=str(split))
    axis.set(title="label histogram", xlabel="label", ylabel="rows")
    axis.legend()
    axis.grid(alpha=0.3, axis="y")
    return _save(figure, out)


def write_dataset_report(report: DatasetReport, out: Path, limit: int = 200) -> Path:
    """Write report.md, its PNG charts and the full CSV listings into `out`; returns report.md.

    report.md lists at most `limit` removed rows and unreadable files; dropped.csv and
    unreadable.csv hold them all.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pictures = {}
    if report.label_kind != "regression":
        for column, counts in report.counts.items():
            title = count_title(report.label_kind, column)
            plot_counts(counts.drop(index=ALL, columns=ALL), out / f"counts_{column}.png", title)
            pictures[title] = f"counts_{column}.png"
    if report.labels is not None:
        plot_label_histogram(report.labels, out / "label_histogram.png")
        pictures[count_title(report.label_kind, "split")] = "label_histogram.png"
    report.dropped.to_csv(out / "dropped.csv", index=False)
    if report.probes is not None:
        report.probes.to_csv(out / "videos.csv", index=False)
        report.unreadable.to_csv(out / "unreadable.csv", index=False)
        if len(report.probes):
            plot_probe_histograms(report.probes, out / "videos.png")
            pictures["videos: duration, fps, frames"] = "videos.png"

    lines = [
        f"# Dataset report: {report.source}",
        "",
        f"{report.num_rows} usable rows ({report.label_kind}), {len(report.dropped)} removed.",
        "",
    ]
    for title, table in report_tables(report, limit):
        lines += [f"## {title}", ""]
        lines += [markdown_table(table) if len(table) else "None.\n"]
        if title in pictures:
            lines += [f"![{title}]({pictures[title]})", ""]
    target = out / "report.md"
    target.write_text("\n".join(lines))
    return target
