"""hydra/launcher=submitit_slurm on a real SLURM cluster: `bash tests/slurm/cluster.sh start`.

Out of the default selection (CI machines have no cluster); `.ci/run` starts one and runs
`pytest -m slurm`. Without a cluster these tests fail, never skip: a green run must mean the
jobs went through sbatch.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slurm

START = "bash tests/slurm/cluster.sh start"
UP = ("idle", "mixed", "allocated")  # a node that takes jobs
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # sbatch hands it on to the jobs


def require_cluster() -> None:
    if shutil.which("sinfo") is None:
        pytest.fail(f"no SLURM here (sinfo is not installed): run `{START}` first")
    done = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30, check=False
    )
    states = done.stdout.split()
    if done.returncode != 0 or not any(state.rstrip("*") in UP for state in states):
        said = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"nodes {states}"
        pytest.fail(f"the SLURM cluster is not up ({said}): run `{START}` first")


def sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """The README's command, run from the repo root as written, into ``sweep_dir``."""
    command = [sys.executable, "scripts/train.py", "-m", "experiment=longtext", *overrides]
    command += ["hydra/launcher=submitit_slurm", "trainer.max_epochs=2"]
    command += [f"hydra.sweep.dir={sweep_dir}"]  # not the clone's outputs/
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300)


def slurm_states(sweep_dir: Path, wait_s: float = 30) -> dict[int, str]:
    """Array task -> its JobState, as slurmctld tells it (sacct needs a database we lack).

    The sweep ends once each job has written its result; the job itself ends a moment later.
    A sweep of one job is a plain job, not an array: its state is task 0's.
    """
    names = [p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"[\d_]+", p.name)]
    [array_id] = {name.split("_")[0] for name in names}  # submitit's dirs: ARRAYID_TASK, or ID
    deadline = time.monotonic() + wait_s
    while True:
        shown = subprocess.run(
            ["scontrol", "-o", "show", "job", array_id], capture_output=True, text=True, check=True
        ).stdout
        found = re.findall(r"ArrayTaskId=(\d+) .*?JobState=(\w+)", shown)
        found = found or [("0", state) for state in re.findall(r"JobState=(\w+)", shown)]
        ending = any(state in ("PENDING", "RUNNING", "COMPLETING") for _, state in found)
        if not ending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"SLURM job {array_id}: {found}")  # shown with -rA: the ids a README can quote
    return {int(task): state for task, state in found}


def job_statuses(sweep_dir: Path, key: str) -> dict[str, str]:
    """The value of ``key`` in each job dir's name -> the job's metrics.json status."""
    return {
        path.parent.name.split(f"{key}=")[1].split(",")[0]: json.loads(path.read_text())["status"]
        for path in sweep_dir.glob("*/metrics.json")
    }


def report_rows(sweep_dir: Path) -> list[dict[str, str]]:
    command = [sys.executable, "scripts/report.py", str(sweep_dir)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    with (sweep_dir / "report.csv").open() as file:
        return list(csv.DictReader(file))


def test_a_cpu_sweep_runs_each_job_through_sbatch_and_reports(tmp_path):
    require_cluster()
    done = sweep(tmp_path / "sweep", "model=rnn,lstm")

    assert done.returncode == 0, done.stderr[-3000:]
    assert "gres" not in done.stderr  # a CPU job asks for no GPUs
    assert slurm_states(tmp_path / "sweep") == {0: "COMPLETED", 1: "COMPLETED"}
    assert job_statuses(tmp_path / "sweep", "model") == {"rnn": "completed", "lstm": "completed"}
    rows = report_rows(tmp_path / "sweep")
    assert {(r["model"], r["status"]) for r in rows} == {
        ("rnn", "completed"),
        ("lstm", "completed"),
    }
    assert all(float(r["best/val/loss"]) > 0 for r in rows)


def test_a_failing_job_is_marked_failed_and_the_other_finishes(tmp_path):
    require_cluster()
    done = sweep(tmp_path / "sweep", "model.cell=rnn,cnn")

    assert done.returncode != 0  # the sweep says that something failed, in one line
    assert "error: model.cell='cnn' is invalid: expected one of rnn, lstm, gru" in done.stderr
    # the job itself ends normally: submitit hands its exception back to the sweep
    assert slurm_states(tmp_path / "sweep") == {0: "COMPLETED", 1: "COMPLETED"}
    assert job_statuses(tmp_path / "sweep", "model.cell") == {"rnn": "completed", "cnn": "failed"}
    rows = report_rows(tmp_path / "sweep")
    assert [(r["model.cell"], r["status"]) for r in rows] == [
        ("rnn", "completed"),
        ("cnn", "failed"),
    ]
