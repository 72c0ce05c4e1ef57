"""The report's tables: report.csv, report.md and the console, one row per job, and the grid
of a sweep over two settings."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seqlab.metrics import METRICS, VAL_ACC, VAL_LOSS, metric_mode
from seqlab.report.jobs import RANKED, JobRecord, sort_jobs, varying_keys


def report_columns(jobs: list[JobRecord]) -> list[str]:
    override_keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    best = [f"best/{m}" for m in METRICS if any(m in job.best for job in jobs)]
    final = [f"final/{m}" for m in METRICS if any(m in job.final for job in jobs)]
    return ["job", *override_keys, *best, *final, "epochs", "wall_time_s", "status", "error"]


def job_row(job: JobRecord) -> dict[str, Any]:
    return {
        "job": job.name,
        **job.overrides,
        **{f"best/{m}": v for m, v in job.best.items()},
        **{f"final/{m}": v for m, v in job.final.items()},
        "epochs": job.epochs,
        "wall_time_s": job.wall_time_s,
        "status": job.status,
        "error": job.error,
    }


def better_word(metric: str) -> str:
    """Which way ``metric`` improves, in a word for a title."""
    return "lower" if metric_mode(metric) == "min" else "higher"


def cell_text(column: str, value: Any) -> str:
    """``value`` as a table shows it: 4 decimals, wall time in 0.1 s, one line."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if column == "wall_time_s" else f"{value:.4f}"
    return " ".join(str(value).split())  # an error message may span lines: a table row may not


def write_csv(jobs: list[JobRecord], columns: list[str], path: Path) -> None:
    # full precision here: the CSV is for other tools, the markdown for people
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(job_row(job) for job in jobs)


def write_markdown(jobs: list[JobRecord], columns: list[str], metric: str, path: Path) -> None:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    numeric = {"epochs", "wall_time_s"}
    rule = ["---:" if c in numeric or c.startswith(("best/", "final/")) else "---" for c in columns]
    rows = [job_row(job) for job in jobs]
    unfinished = unfinished_line(jobs)
    text = [
        "# Sweep report",
        "",
        f"Jobs: {len(jobs)}, best {metric} first ({better_word(metric)} is better).",
        "",
        *([unfinished, ""] if unfinished else []),
        line(columns),
        "|" + "|".join(rule) + "|",
        *(line([cell_text(c, row.get(c)) for c in columns]) for row in rows),
        "",
    ]
    pivot = pivot_table(jobs, metric)
    if pivot:
        header, *grid = _pivot_rows(pivot)
        text += [
            f"## Best {metric}: {pivot.row_key} x {pivot.column_key}",
            "",
            line(header),
            "|" + "---|" + "---:|" * len(pivot.columns),
            *(line(cells) for cells in grid),
            "",
        ]
    text.append(f"![{VAL_LOSS} curves and best {metric} per job](report.png)")
    path.write_text("\n".join(text) + "\n")


def print_table(jobs: list[JobRecord], metric: str) -> None:
    # a terminal is ~80 characters wide: what the sweep varied and the best validation metrics,
    # the rest is in report.md (val/bpc is val/loss in base 2: left out)
    keys, named = telling_apart(jobs)
    metrics = [
        m for m in dict.fromkeys((metric, VAL_LOSS, VAL_ACC)) if any(m in j.best for j in jobs)
    ]
    errors = any(job.error for job in jobs)
    table = Table(title=f"best metrics per job, best {metric} first", title_justify="left")
    for key in keys:  # fold a long name or error, never cut it to "…"; a key is text, not markup
        table.add_column(escape(key), overflow="fold")
    for name in [*metrics, "epochs"]:  # no_wrap: numbers and status stay whole, names fold
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if errors:
        table.add_column("error", overflow="fold")
    for job, cells in zip(jobs, named, strict=True):
        cells += [cell_text(m, job.best.get(m)) for m in metrics] + [
            cell_text("epochs", job.epochs)
        ]
        cells += [job.status, cell_text("error", job.error)] if errors else [job.status]
        table.add_row(*map(escape, cells))  # a value like [classify] is text, not markup
    Console().print(table)
    if unfinished := unfinished_line(jobs):
        Console().print(escape(unfinished), soft_wrap=True)


def unfinished_line(jobs: list[JobRecord]) -> str:
    """``2 of 6 jobs did not finish: model=gru (killed), seed=2 (not run)``, or "" if all did."""
    unfinished = [
        f"{label} ({job.status})"
        for job, label in zip(jobs, short_labels(jobs), strict=True)
        if job.status != RANKED
    ]
    if not unfinished:
        return ""
    return f"{len(unfinished)} of {len(jobs)} jobs did not finish: {', '.join(unfinished)}"


def print_pivot(jobs: list[JobRecord], metric: str) -> None:
    pivot = pivot_table(jobs, metric)
    if pivot is None:
        return
    # keys and values are text from the jobs' files, not markup
    header, *grid = [list(map(escape, row)) for row in _pivot_rows(pivot)]
    title = escape(f"best {metric}: {pivot.row_key} x {pivot.column_key}")
    table = Table(header[0], title=title, title_justify="left")
    for column in header[1:]:
        table.add_column(column, justify="right", no_wrap=True)
    for cells in grid:
        table.add_row(*cells)
    Console().print(table)


def short_value(value: str) -> str:
    # Optuna's optimizer.lr=0.0428447150079662 reads 0.04284 in a label; the CSV keeps every digit
    try:
        return value if value.lstrip("-").isdigit() else f"{float(value):.4g}"
    except ValueError:
        return value


def telling_apart(jobs: list[JobRecord]) -> tuple[list[str], list[list[str]]]:
    """Columns and each job's cells that tell the jobs apart: the overrides the sweep varied,
    or the job names where those do not (a job without any of them, or two jobs sharing them)."""
    keys = varying_keys(jobs)
    cells = [[short_value(job.overrides.get(k, "")) for k in keys] for job in jobs]
    if all(any(row) for row in cells) and len(set(map(tuple, cells))) == len(jobs):
        return keys, cells
    return ["job"], [[job.name] for job in jobs]


def short_labels(jobs: list[JobRecord]) -> list[str]:
    """Each job as ``model=lstm,seed=1`` (what sets it apart), or its name."""
    keys, cells = telling_apart(jobs)
    if keys == ["job"]:
        return [row[0] for row in cells]
    return [",".join(f"{k}={v}" for k, v in zip(keys, row, strict=True) if v) for row in cells]


@dataclass
class Pivot:
    """Each job's best metric on a grid: rows by one varied key's values, columns by the other's."""

    row_key: str
    column_key: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], str]  # (row value, column value) -> the best value or a status


def _in_order(values: set[str]) -> list[str]:
    # numbers by size (distance 5, 20, 100), words alphabetically
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def pivot_table(jobs: list[JobRecord], metric: str) -> Pivot | None:
    """The grid of best ``metric`` when exactly two override keys vary across the jobs, else None.

    The key with fewer values gives the columns (the first key on a tie), so the table stays
    narrow. A cell with no value shows why: the job's status (failed, killed, not run, ...).
    """
    keys = varying_keys(jobs)
    if len(keys) != 2:
        return None
    values = {key: _in_order({job.overrides.get(key, "") for job in jobs}) for key in keys}
    column_key, row_key = sorted(keys, key=lambda key: len(values[key]))
    cells: dict[tuple[str, str], str] = {}
    for job in sort_jobs(jobs, metric):  # best first: a pair run twice shows its better run
        pair = (job.overrides.get(row_key, ""), job.overrides.get(column_key, ""))
        if job.status == RANKED and metric in job.best:
            cells.setdefault(pair, cell_text(metric, job.best[metric]))
        else:
            cells.setdefault(pair, job.status)
    return Pivot(row_key, column_key, values[row_key], values[column_key], cells)


def _pivot_rows(pivot: Pivot) -> list[list[str]]:
    header = [f"{pivot.row_key} \\ {pivot.column_key}", *map(short_value, pivot.columns)]
    rows = [
        [short_value(row), *(pivot.cells.get((row, column), "") for column in pivot.columns)]
        for row in pivot.rows
    ]
    return [header, *rows]
