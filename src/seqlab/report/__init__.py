"""`python scripts/report.py SWEEP_DIR`: every job of a sweep in report.md, .csv and .png,
read from what each job left: metrics.json, .hydra/overrides.yaml and TensorBoard events.
A sweep over exactly two settings also gets a grid of its best metric, one setting per axis."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from seqlab.report.figure import report_figure
from seqlab.report.jobs import JobRecord, collect, sort_jobs, sweep_metric, val_loss_curve
from seqlab.report.tables import (
    pivot_table,
    print_pivot,
    print_table,
    report_columns,
    write_csv,
    write_markdown,
)

__all__ = [
    "JobRecord",
    "collect",
    "main",
    "pivot_table",
    "report_figure",
    "sort_jobs",
    "val_loss_curve",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write report.md, .csv and .png for a sweep.")
    dirs_help = "a sweep dir (outputs/multirun/DATE/TIME), or run dirs"
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help=dirs_help)
    out_help = "where to write (default: the DIR given, or the common parent of the DIRs)"
    parser.add_argument("--out", type=Path, metavar="DIR", help=out_help)
    args = parser.parse_args(argv)
    try:
        jobs, base = collect(args.dirs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    metric = sweep_metric(jobs)
    jobs = sort_jobs(jobs, metric)
    columns = report_columns(jobs)
    out = args.out or base
    out.mkdir(parents=True, exist_ok=True)
    write_markdown(jobs, columns, metric, out / "report.md")
    write_csv(jobs, columns, out / "report.csv")
    report_figure(jobs, metric).savefig(out / "report.png", dpi=100)

    print_table(jobs, metric)
    print_pivot(jobs, metric)
    Console().print(f"report.md, report.csv, report.png in {os.path.relpath(out)}", soft_wrap=True)
    return 0
