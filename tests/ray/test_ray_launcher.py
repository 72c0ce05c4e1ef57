"""hydra/launcher=ray on a local Ray instance, started by the sweep itself.

hydra-ray-launcher pins cloudpickle<3, which the main environment's joblib refuses, so these
tests run in an environment of their own (`.ci/run` makes it):

    python -m venv .ray-venv && .ray-venv/bin/pip install torch==2.13.0 -e ".[ray]" pytest
    .ray-venv/bin/pytest -m ray

Out of the default selection; without the plugin they fail, never skip: a green run must mean
the jobs went through Ray.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.ray

SET_UP = 'pip install torch==2.13.0 -e ".[ray]" pytest, in an environment of its own'
QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


def sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """The README's command, run from the repo root, into ``sweep_dir``."""
    if find_spec("hydra_plugins.hydra_ray_launcher") is None:
        pytest.fail(f"hydra-ray-launcher is not installed here: {SET_UP}")
    command = [sys.executable, "scripts/train.py", "-m", "experiment=hihello", *overrides]
    command += ["hydra/launcher=ray", *QUIET, f"hydra.sweep.dir={sweep_dir}"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def jobs(sweep_dir: Path, key: str) -> dict[str, dict]:
    """The value of ``key`` in each job dir's name -> the job's metrics.json."""
    return {
        path.parent.name.split(f"{key}=")[1].split(",")[0]: json.loads(path.read_text())
        for path in sweep_dir.glob("*/metrics.json")
    }


def test_a_ray_sweep_runs_each_job_as_a_ray_task_and_reports(tmp_path):
    done = sweep(tmp_path / "sweep", "model=rnn,gru")

    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "Ray Launcher is launching 2 jobs" in log
    assert "Started a local Ray instance" in log
    assert log.count("(_run_job pid=") > 0  # the jobs' lines, relayed from Ray's workers
    found = jobs(tmp_path / "sweep", "model")
    assert set(found) == {"rnn", "gru"}
    for job in found.values():
        assert job["status"] == "completed"
        assert job["predictions"][0]["predicted"] == "ihello"  # the lesson's promise

    report = subprocess.run(
        [sys.executable, "scripts/report.py", str(tmp_path / "sweep")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    with (tmp_path / "sweep" / "report.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["status"] for row in rows) == ["completed", "completed"]


def test_a_failing_ray_job_is_marked_failed_and_the_other_finishes(tmp_path):
    done = sweep(tmp_path / "sweep", "model.cell=rnn,cnn", "trainer.max_epochs=3")

    assert done.returncode != 0  # the sweep says that something failed
    found = jobs(tmp_path / "sweep", "model.cell")
    assert {cell: job["status"] for cell, job in found.items()} == {
        "rnn": "completed",
        "cnn": "failed",
    }
    assert "model.cell='cnn' is invalid: expected one of rnn, lstm, gru" in found["cnn"]["error"]


def test_a_ray_sweep_joins_a_running_ray_cluster_with_address_auto(tmp_path):
    ray = str(Path(sys.executable).parent / "ray")  # the CLI of this environment's Ray
    subprocess.run([ray, "start", "--head", "--num-cpus=2"], check=True, capture_output=True)
    try:
        done = sweep(tmp_path / "sweep", "model=rnn,lstm", "hydra.launcher.ray.init.address=auto")
    finally:
        subprocess.run([ray, "stop"], check=True, capture_output=True)

    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "Connected to Ray cluster" in log and "Started a local Ray instance" not in log
    found = jobs(tmp_path / "sweep", "model")
    assert {cell: job["status"] for cell, job in found.items()} == {
        "rnn": "completed",
        "lstm": "completed",
    }
