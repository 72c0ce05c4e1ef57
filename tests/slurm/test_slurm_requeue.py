"""A SLURM job signalled mid-run (scancel --signal=USR1) is requeued and resumes in place.

Needs the test cluster (`bash tests/slurm/cluster.sh start`), as test_slurm_launcher.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT
from test_slurm_launcher import ENV, require_cluster, slurm_states

pytestmark = pytest.mark.slurm

RUN = ["experiment=longtext", "trainer.max_epochs=30"]
RUN += ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.3)


def epochs_done(sweep_dir: Path) -> int:
    for path in sweep_dir.glob("*/metrics.json"):
        try:
            return json.loads(path.read_text())["epochs"]
        except (ValueError, KeyError):  # being written
            return 0
    return 0


def job(job_id: str) -> dict[str, str]:
    shown = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(JobState|Restarts)=(\w+)", shown))


def test_a_signalled_job_saves_requeues_and_ends_as_an_uninterrupted_run(tmp_path):
    require_cluster()
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "scripts/train.py", "-m", *RUN, "hydra/launcher=submitit_slurm"]
    command += [f"hydra.sweep.dir={sweep_dir}"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    sweep = subprocess.Popen(command, cwd=ROOT, env=ENV, text=True, **pipes)
    # beside it, the same run uninterrupted (each start is mostly one core's imports)
    reference = tmp_path / "reference"
    alone = [sys.executable, "scripts/train.py", *RUN, f"hydra.run.dir={reference}"]
    uninterrupted_run = subprocess.Popen(alone, cwd=ROOT, env=ENV, text=True, **pipes)
    wait_for("5 epochs", lambda: epochs_done(sweep_dir) >= 5)
    [job_id] = [p.name for p in (sweep_dir / ".submitit").iterdir() if p.name.isdigit()]
    subprocess.run(["scancel", "--signal=USR1", job_id], check=True)
    wait_for("requeue", lambda: job(job_id) == {"JobState": "PENDING", "Restarts": "1"})
    stopped_at = epochs_done(sweep_dir)

    # SLURM holds a requeued job 120 s before it may start again: the test does not wait
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    _, err = sweep.communicate(timeout=300)
    _, alone_err = uninterrupted_run.communicate(timeout=300)
    assert uninterrupted_run.returncode == 0, alone_err[-3000:]

    assert sweep.returncode == 0, err[-3000:]
    assert slurm_states(sweep_dir) == {0: "COMPLETED"}
    assert job(job_id)["Restarts"] == "1"
    [run_dir] = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    task_log = (sweep_dir / ".submitit" / job_id / f"{job_id}_0_log.err").read_text()
    assert f"SLURM job {job_id} requeued: it resumes from last.ckpt" in task_log
    assert f"SLURM job {job_id} restart 1: resuming" in (run_dir / "train.log").read_text()
    resumed = json.loads((run_dir / "metrics.json").read_text())
    uninterrupted = json.loads((reference / "metrics.json").read_text())
    assert 5 <= stopped_at < 30 and resumed["status"] == "completed" and resumed["epochs"] == 30
    assert resumed["final"] == pytest.approx(uninterrupted["final"], rel=1e-6)
    assert resumed["best"] == pytest.approx(uninterrupted["best"], rel=1e-6)
    print(f"job {job_id}: stopped after epoch {stopped_at}\n{resumed['final']}")
    print(f"uninterrupted: {uninterrupted['final']}")
