"""What a sweep's jobs left behind: metrics.json, .hydra/overrides.yaml, TensorBoard events."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.metrics import METRICS, METRICS_FILE, VAL_LOSS, metric_mode

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


def varying_keys(jobs: list[JobRecord]) -> list[str]:
    """The override keys whose value differs between jobs: what the sweep searched."""
    keys = dict.fromkeys(key for job in jobs for key in job.overrides)
    return [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]


def val_loss_curve(job_dir: Path) -> tuple[list[int], list[float]]:
    """(steps, values) of val/loss from the job's TensorBoard events; empty if none."""
    events = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    if VAL_LOSS not in events.Tags()["scalars"]:
        return [], []
    points = events.Scalars(VAL_LOSS)
    return [p.step for p in points], [p.value for p in points]
