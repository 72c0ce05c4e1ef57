"""What a sweep's jobs left behind (metrics.json, .hydra/overrides.yaml, TensorBoard events, the
run dir's lock) and what the sweep planned (multirun.yaml): a record per job, run or not."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.metrics import METRICS, METRICS_FILE, VAL_LOSS, metric_mode
from seqlab.report.files import Unreadable, read_overrides, read_summary
from seqlab.runlock import lock_state
from seqlab.sweeps import SWEEP_FILE, planned_jobs

RANKED = "completed"  # every other job is listed after these, whatever metrics it logged
NOT_RUN = "not run"


@dataclass
class JobRecord:
    name: str
    path: Path | None  # None: a job its sweep planned and never started
    overrides: dict[str, str]
    status: str
    error: str = ""
    optimized_metric: str | None = None
    epochs: int | None = None
    wall_time_s: float | None = None
    final: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    given: list[str] | None = None  # the overrides as Hydra gave them, where readable


def find_jobs(root: Path) -> tuple[list[Path], list[Path]]:
    """Every dir at or below ``root`` that a job wrote (it holds metrics.json or .hydra/), and
    every sweep dir (it holds multirun.yaml)."""
    jobs, sweeps = [], []
    for here, dirs, files in os.walk(root):
        if METRICS_FILE in files or ".hydra" in dirs:
            jobs.append(Path(here))
        if SWEEP_FILE in files:
            sweeps.append(Path(here))
        # no pruning below a job: an override value with "/" nests one job's dir in another's
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(jobs), sorted(sweeps)


def override_columns(given: list[str]) -> dict[str, str]:
    """What sets a job apart, as ``{key: value}``; how the sweep ran is left out."""
    pairs = {}
    for item in given:
        key, _, value = item.partition("=")
        key = key.lstrip("+")  # +key=value and ++key=value set the same key as key=value
        if not (key.startswith("hydra") or key == "hparams_search"):
            pairs[key] = value
    return pairs


def load_job(job_dir: Path, name: str) -> JobRecord:
    problems, given = [], None
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        try:
            given = read_overrides(overrides_file)
        except Unreadable as err:
            problems.append(f"{err} (ignored)")
    job = JobRecord(name, job_dir, override_columns(given or []), "running", given=given)
    path = job_dir / METRICS_FILE
    if path.is_file():  # else nothing recorded yet: in its first epoch, or stopped before its end
        try:
            summary = read_summary(path)
        except Unreadable as err:
            job.status, job.error = "unreadable", "; ".join([str(err), *problems])
            return job
        job.status, job.optimized_metric = summary.status, summary.optimized_metric
        job.epochs, job.wall_time_s = summary.epochs, summary.wall_time_s
        job.final, job.best = summary.final, summary.best
        problems.insert(0, summary.error)
    if job.status == "running":
        job.status = _running_or_killed(job_dir)
    job.error = "; ".join(filter(None, problems))
    return job


def _running_or_killed(job_dir: Path) -> str:
    # a run holds its dir's lock until it ends, however it ends: a job that did not record its
    # end and holds no lock was killed (with no .lock at all, while starting up)
    return "running" if lock_state(job_dir) == "held" else "killed"


def not_run(sweep: Path, jobs: list[JobRecord], base: Path) -> list[JobRecord]:
    """The jobs ``sweep`` planned that left no dir of their own, named by their overrides."""
    plan = planned_jobs(sweep)
    if plan is None:
        return []
    # each dir answers for one planned job with the same overrides, in any order
    ran = Counter(
        frozenset(job.given)
        for job in jobs
        if job.path and job.given is not None and sweep in job.path.parents
    )
    missing = []
    for given in plan:
        if ran[frozenset(given)]:
            ran[frozenset(given)] -= 1
            continue
        overrides = override_columns(given)
        name = ",".join(sorted(f"{k}={v}" for k, v in overrides.items()))
        name = str((sweep / name).relative_to(base)) if sweep != base else name
        missing.append(JobRecord(name, None, overrides, NOT_RUN, given=given))
    return missing


def collect(roots: list[Path]) -> tuple[list[JobRecord], Path]:
    """Every job below ``roots``, and every job their sweeps planned and never started, named
    relative to their common dir, and that dir; a ValueError names the first root that does not
    exist or holds no job."""
    job_dirs: dict[Path, None] = {}  # a dict, not a set: ordered, and a job given twice is one
    sweeps: dict[Path, None] = {}
    for root in roots:
        if not root.is_dir():
            raise ValueError(f"{root}: {'not a' if root.exists() else 'no such'} directory")
        found, found_sweeps = find_jobs(root)
        if not found and not found_sweeps:
            raise ValueError(f"{root}: no runs in it (no metrics.json or .hydra dir below it)")
        job_dirs |= dict.fromkeys(job.resolve() for job in found)
        sweeps |= dict.fromkeys(sweep.resolve() for sweep in found_sweeps)
    base = Path(os.path.commonpath([root.resolve() for root in roots]))  # one root: itself
    # a single run is named by its dir: its path relative to itself would be "."
    jobs = [load_job(d, d.name if d == base else str(d.relative_to(base))) for d in job_dirs]
    for sweep in sweeps:
        jobs += not_run(sweep, jobs, base)
    return sorted(jobs, key=lambda job: job.name), base


def sweep_metric(jobs: list[JobRecord]) -> str:
    """The metric the jobs optimised (the commonest, should several sweeps be mixed)."""
    named = Counter(job.optimized_metric for job in jobs if job.optimized_metric in METRICS)
    return named.most_common(1)[0][0] if named else VAL_LOSS


def sort_jobs(jobs: list[JobRecord], metric: str) -> list[JobRecord]:
    """Best ``metric`` first; jobs that did not complete, and jobs that never logged it, last."""
    sign = 1 if metric_mode(metric) == "min" else -1

    def key(job: JobRecord) -> tuple[bool, float]:
        if job.status != RANKED or metric not in job.best:
            return True, 0.0  # sorted() is stable: these keep their order by name
        return False, sign * job.best[metric]

    return sorted(jobs, key=key)


def varying_keys(jobs: list[JobRecord]) -> list[str]:
    """The override keys whose value differs between jobs: what the sweep searched."""
    keys = dict.fromkeys(key for job in jobs for key in job.overrides)
    return [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]


def val_loss_curve(job_dir: Path | None) -> tuple[list[int], list[float]]:
    """(steps, values) of val/loss from the job's TensorBoard events; empty if none."""
    if job_dir is None or not job_dir.is_dir():  # a job that never ran
        return [], []
    events = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    if VAL_LOSS not in events.Tags()["scalars"]:
        return [], []
    points = events.Scalars(VAL_LOSS)
    return [p.step for p in points], [p.value for p in points]
