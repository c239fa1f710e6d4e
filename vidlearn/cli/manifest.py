"""`vidlearn-manifest`: build manifests from the command line.

    vidlearn-manifest merge --tranche 1=images/tranche_1:labels/tranche_1.csv \\
        --tranche 2=images/tranche_2:labels/tranche_2.csv --out master.csv

`merge` joins each tranche's label CSV with the files of its image folder (rules in
`vidlearn.data.merge`), writes the master CSV and `<out stem>.report.csv` beside it, and prints
one row of counts per tranche. Exit status: 0; 1 with --strict when any file, label row or
duplicate is reported; 2 when the arguments or inputs cannot be merged at all.

A plain argparse script rather than a Hydra app: it trains nothing and has no config tree.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import astuple
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vidlearn.data.manifest import ManifestError
from vidlearn.data.merge import KEYS, MergeReport, Tranche, merge_tranches

TRANCHE_FORMAT = "NAME=FOLDER:CSV"


def parse_tranche(text: str) -> Tranche:
    """Parse NAME=FOLDER:CSV; the folder/CSV split is at the last ':'."""
    name, equals, paths = text.partition("=")
    folder, colon, labels = paths.rpartition(":")
    if not (equals and colon and name and folder and labels):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {TRANCHE_FORMAT}, e.g. 1=images/tranche_1:labels/tranche_1.csv"
        )
    return Tranche(name=name, images=Path(folder), labels=Path(labels))


def build_parser() -> argparse.ArgumentParser:
    """The `vidlearn-manifest` argument parser with its `merge` subcommand."""
    parser = argparse.ArgumentParser(prog="vidlearn-manifest", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser(
        "merge",
        help="merge per-tranche label CSVs and image folders into one master CSV",
        description="Merge per-tranche label CSVs with their image folders into one master CSV "
        "(paths relative to it, a tranche column) and a report of what did not match.",
    )
    merge.add_argument(
        "--tranche",
        type=parse_tranche,
        action="append",
        required=True,
        metavar=TRANCHE_FORMAT,
        help="a tranche's name, image folder and label CSV; repeat once per tranche",
    )
    merge.add_argument("--out", type=Path, required=True, help="the master CSV to write")
    merge.add_argument(
        "--file-column", default="path", help="label-CSV column naming the file (default: path)"
    )
    merge.add_argument(
        "--key",
        choices=KEYS,
        default="name",
        help="match on the file name, or on the path inside the tranche folder (default: name)",
    )
    merge.add_argument(
        "--tranche-column", default="tranche", help="column for the tranche name (default: tranche)"
    )
    merge.add_argument(
        "--encoding", default="utf-8-sig", help="label-CSV text encoding (default: utf-8-sig)"
    )
    merge.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when any file, label row or duplicate is left unmatched",
    )
    return parser


def print_summary(report: MergeReport) -> None:
    """Print one row of counts per tranche, a total row, and where the report went."""
    table = Table(title=f"merged into {report.output}")
    table.add_column("tranche", overflow="fold")  # a long name wraps whole, never cut
    for column in ("merged", "files without labels", "labels without files", "duplicates"):
        table.add_column(column, justify="right")
    rows = [astuple(summary) for summary in report.tranches]  # name, then the counts above
    for name, *counts in rows:
        table.add_row(name, *map(str, counts))
    totals = [sum(column) for column in zip(*(counts for _, *counts in rows), strict=True)]
    table.add_row("total", *map(str, totals), style="bold")
    console = Console()
    console.print(table)
    console.print(
        f"{len(report.unmatched)} unmatched or duplicate entries listed in {report.report}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = merge_tranches(
            args.tranche,
            args.out,
            file_column=args.file_column,
            key=args.key,
            tranche_column=args.tranche_column,
            encoding=args.encoding,
        )
    except ManifestError as error:
        print(f"vidlearn-manifest merge: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. --out names a folder, or a folder that cannot be written
        print(f"vidlearn-manifest merge: {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    print_summary(report)
    return 1 if args.strict and report.unmatched else 0


if __name__ == "__main__":
    sys.exit(main())
