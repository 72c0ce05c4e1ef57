"""`python scripts/report.py SWEEP_DIR`: every job of a sweep in report.md, .csv and .png,
read from what each job left: metrics.json, .hydra/overrides.yaml and TensorBoard events.
A sweep over exactly two settings also gets a grid of its best metric, one setting per axis."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.metrics import METRICS, METRICS_FILE, VAL_ACC, VAL_LOSS, metric_mode

UNRANKED = ("failed", "missing", "unreadable")  # listed last, whatever metrics they logged


@dataclass
class JobRecord:
    name: str
    path: Path
    overrides: dict[str, str]
    status: str
    error: str = ""
    optimized_metric: str | None = None
    epochs: int | None = None
    wall_time_s: float | None = None
    final: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)


def find_jobs(root: Path) -> list[Path]:
    """Every dir at or below ``root`` that a job wrote: it holds metrics.json or .hydra/."""
    jobs = []
    for here, dirs, files in os.walk(root):
        if METRICS_FILE in files or ".hydra" in dirs:
            jobs.append(Path(here))
        # no pruning below a job: an override value with "/" nests one job's dir in another's
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(jobs)


def job_overrides(job_dir: Path) -> dict[str, str]:
    """What sets this job apart, as ``{key: value}``; how the sweep ran is left out."""
    path = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(path.read_text()) if path.is_file() else None
    pairs = {}
    for item in overrides or []:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+")  # +key=value and ++key=value set the same key as key=value
        if not (key.startswith("hydra") or key == "hparams_search"):
            pairs[key] = value
    return pairs


def load_job(job_dir: Path, name: str) -> JobRecord:
    overrides = job_overrides(job_dir)
    path = job_dir / METRICS_FILE
    if not path.is_file():  # killed before RunSummary wrote anything
        return JobRecord(name, job_dir, overrides, "missing")
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return JobRecord(name, job_dir, overrides, "unreadable", f"{METRICS_FILE}: {err}")
    # a job that failed before training wrote only its status and error
    return JobRecord(
        name,
        job_dir,
        overrides,
        status=summary.get("status", "unknown"),
        error=summary.get("error") or "",
        optimized_metric=summary.get("optimized_metric"),
        epochs=summary.get("epochs"),
        wall_time_s=summary.get("wall_time_s"),
        final=summary.get("final") or {},
        best=summary.get("best") or {},
    )


def sweep_metric(jobs: list[JobRecord]) -> str:
    """The metric the jobs optimised (the commonest, should several sweeps be mixed)."""
    named = Counter(job.optimized_metric for job in jobs if job.optimized_metric in METRICS)
    return named.most_common(1)[0][0] if named else VAL_LOSS


def sort_jobs(jobs: list[JobRecord], metric: str) -> list[JobRecord]:
    """Best ``metric`` first; failed and missing jobs, and jobs that never logged it, last."""
    sign = 1 if metric_mode(metric) == "min" else -1

    def key(job: JobRecord) -> tuple[bool, float]:
        if job.status in UNRANKED or metric not in job.best:
            return True, 0.0  # sorted() is stable: these keep their order by name
        return False, sign * job.best[metric]

    return sorted(jobs, key=key)


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


def _better(metric: str) -> str:
    return "lower" if metric_mode(metric) == "min" else "higher"


def _cell(column: str, value: Any) -> str:
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
    text = [
        "# Sweep report",
        "",
        f"Jobs: {len(jobs)}, best {metric} first ({_better(metric)} is better).",
        "",
        line(columns),
        "|" + "|".join(rule) + "|",
        *(line([_cell(c, row.get(c)) for c in columns]) for row in rows),
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
    for key in keys:
        table.add_column(key, overflow="fold")  # fold a long name or error, never cut it to "…"
    for name in [*metrics, "epochs"]:  # no_wrap: numbers and status stay whole, names fold
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if errors:
        table.add_column("error", overflow="fold")
    for job, cells in zip(jobs, named, strict=True):
        cells += [_cell(m, job.best.get(m)) for m in metrics] + [_cell("epochs", job.epochs)]
        cells += [job.status, _cell("error", job.error)] if errors else [job.status]
        table.add_row(*map(escape, cells))  # a value like [classify] is text, not markup
    Console().print(table)


def print_pivot(jobs: list[JobRecord], metric: str) -> None:
    pivot = pivot_table(jobs, metric)
    if pivot is None:
        return
    header, *grid = _pivot_rows(pivot)
    title = f"best {metric}: {pivot.row_key} x {pivot.column_key}"
    table = Table(header[0], title=title, title_justify="left")
    for column in header[1:]:
        table.add_column(column, justify="right", no_wrap=True)
    for cells in grid:
        table.add_row(*map(escape, cells))  # a value like [classify] is text, not markup
    Console().print(table)


def val_loss_curve(job_dir: Path) -> tuple[list[int], list[float]]:
    """(steps, values) of val/loss from the job's TensorBoard events; empty if none."""
    events = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    if VAL_LOSS not in events.Tags()["scalars"]:
        return [], []
    points = events.Scalars(VAL_LOSS)
    return [p.step for p in points], [p.value for p in points]


def varying_keys(jobs: list[JobRecord]) -> list[str]:
    """The override keys whose value differs between jobs: what the sweep searched."""
    keys = dict.fromkeys(key for job in jobs for key in job.overrides)
    return [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]


def _short(value: str) -> str:
    # Optuna's model.lr=0.0428447150079662 reads 0.04284 in a label; the CSV keeps every digit
    try:
        return value if value.lstrip("-").isdigit() else f"{float(value):.4g}"
    except ValueError:
        return value


def telling_apart(jobs: list[JobRecord]) -> tuple[list[str], list[list[str]]]:
    """Columns and each job's cells that tell the jobs apart: the overrides the sweep varied,
    or the job names where those do not (a job without any of them, or two jobs sharing them)."""
    keys = varying_keys(jobs)
    cells = [[_short(job.overrides.get(k, "")) for k in keys] for job in jobs]
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
    narrow. A cell with no value shows why: the job's status (failed, missing, ...).
    """
    keys = varying_keys(jobs)
    if len(keys) != 2:
        return None
    values = {key: _in_order({job.overrides.get(key, "") for job in jobs}) for key in keys}
    column_key, row_key = sorted(keys, key=lambda key: len(values[key]))
    cells: dict[tuple[str, str], str] = {}
    for job in sort_jobs(jobs, metric):  # best first: a pair run twice shows its better run
        pair = (job.overrides.get(row_key, ""), job.overrides.get(column_key, ""))
        if job.status not in UNRANKED and metric in job.best:
            cells.setdefault(pair, _cell(metric, job.best[metric]))
        else:
            cells.setdefault(pair, job.status)
    return Pivot(row_key, column_key, values[row_key], values[column_key], cells)


def _pivot_rows(pivot: Pivot) -> list[list[str]]:
    header = [f"{pivot.row_key} \\ {pivot.column_key}", *map(_short, pivot.columns)]
    rows = [
        [_short(row), *(pivot.cells.get((row, column), "") for column in pivot.columns)]
        for row in pivot.rows
    ]
    return [header, *rows]


def _spans_decades(values: list[float]) -> bool:
    # one diverged job (val/loss 1e6) would flatten every other line or bar on a linear axis
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100


def report_figure(jobs: list[JobRecord], metric: str) -> Figure:
    """Left, every job's val/loss per step; right, each job's best ``metric``, best on top."""
    # the Agg canvas, not pyplot: no display needed and no global figure state left behind
    fig = Figure(figsize=(13, max(4.0, 1.5 + 0.35 * len(jobs))), layout="constrained")
    FigureCanvasAgg(fig)
    curves, bars = fig.subplots(1, 2)
    labels, n = short_labels(jobs), len(jobs)
    # a job has one colour in both panels; beyond ten, colour by rank: best dark, worst light
    ranked = [colormaps["viridis"](0.9 * y / max(n - 1, 1)) for y in range(n)]
    colors = [f"C{y}" for y in range(n)] if n <= 10 else ranked

    logged: list[float] = []
    for job, label, color in zip(jobs, labels, colors, strict=True):
        steps, values = val_loss_curve(job.path)
        if steps:  # a job that failed early logged nothing
            curves.plot(steps, values, marker=".", label=label, color=color)
            logged += values
    # no legend: it would hide lines, and the bars beside name each job in its colour
    curves.set(title=f"{VAL_LOSS} per step, coloured as the bars", xlabel="step", ylabel=VAL_LOSS)
    curves.set_yscale("log" if _spans_decades(logged) else "linear")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    if not curves.lines:
        curves.text(0.5, 0.5, f"no job logged {VAL_LOSS}", ha="center", transform=curves.transAxes)

    best = {y: job.best[metric] for y, job in enumerate(jobs) if metric in job.best}
    bars.barh(list(best), list(best.values()), color=[colors[y] for y in best])
    bars.set_xscale("log" if _spans_decades(list(best.values())) else "linear")
    for y, job in enumerate(jobs):
        if y in best:
            bars.text(best[y], y, f" {best[y]:.4f}", va="center", fontsize="small")
        else:  # the status at the left edge: x in axes fractions, y in data
            where = bars.get_yaxis_transform()
            bars.text(0, y, f" {job.status}", va="center", fontsize="small", transform=where)
    bars.set_yticks(list(range(n)), labels, fontsize="small")
    bars.margins(x=0.15)  # room for the value printed after the longest bar
    bars.set_ylim(n - 0.5, -0.5)  # every job, bar or not, and the best on top as in the table
    bars.set(title=f"best {metric} ({_better(metric)} is better)", xlabel=metric)
    return fig


def collect(roots: list[Path]) -> tuple[list[JobRecord], Path]:
    """Every job below ``roots``, named relative to their common dir, and that dir; a
    ValueError names the first root that does not exist or holds no job."""
    job_dirs: dict[Path, None] = {}  # a dict, not a set: ordered, and a job given twice is one
    for root in roots:
        if not root.is_dir():
            raise ValueError(f"{root}: {'not a' if root.exists() else 'no such'} directory")
        found = find_jobs(root)
        if not found:
            raise ValueError(f"{root}: no runs in it (no metrics.json or .hydra dir below it)")
        job_dirs |= dict.fromkeys(job.resolve() for job in found)
    base = Path(os.path.commonpath([root.resolve() for root in roots]))  # one root: itself
    # a single run is named by its dir: its path relative to itself would be "."
    jobs = [load_job(d, d.name if d == base else str(d.relative_to(base))) for d in job_dirs]
    return sorted(jobs, key=lambda job: job.name), base


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
