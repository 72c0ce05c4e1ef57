"""hydra/launcher=submitit_local: each job a subprocess of this machine, with a time limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


def start_sweep(sweep_dir: Path, *overrides: str) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", *overrides, *QUIET]
    command += ["hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        command, cwd=sweep_dir.parent, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def jobs(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


def test_each_job_runs_in_its_own_process_and_a_job_over_its_time_limit_fails_saying_so(
    tmp_path,
):
    # side by side: a 2-job sweep under the default limit, and a job that cannot end in 1 min
    done = start_sweep(tmp_path / "done", "experiment=longtext", "seed=0,1", "trainer.max_epochs=3")
    late = start_sweep(
        tmp_path / "late", "experiment=longtext", "trainer.max_epochs=100000",
        "hydra.launcher.timeout_min=1",
    )  # fmt: skip
    _, done_err = done.communicate(timeout=300)
    _, late_err = late.communicate(timeout=300)

    assert done.returncode == 0, done_err[-3000:]
    finished = jobs(tmp_path / "done")
    assert sorted(name.split("seed=")[1][0] for name in finished) == ["0", "1"]
    assert all(job["status"] == "completed" and job["epochs"] == 3 for job in finished.values())
    # submitit's own dirs: one per job, each a process of its own
    assert len([p for p in (tmp_path / "done" / ".submitit").iterdir() if p.name.isdigit()]) == 2

    assert late.returncode == 1
    reason = "the job ran past its time limit, hydra.launcher.timeout_min=1"
    assert late_err.strip().splitlines()[-1].endswith(reason)
    [stopped] = jobs(tmp_path / "late").values()
    assert stopped["status"] == "failed" and stopped["error"] == reason
    assert 0 < stopped["epochs"] < 100000


def test_a_sweep_of_script_relaunching_ddp_stops_before_its_first_job(tmp_path):
    # a submitit_local job is one process: Lightning's ddp would start submitit's runner again
    sweep = start_sweep(tmp_path / "sweep", "experiment=hihello", "trainer=ddp_cpu", "seed=0,1")
    _, err = sweep.communicate(timeout=120)

    assert sweep.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: trainer.strategy='ddp' is invalid: ")
    assert not list((tmp_path / "sweep").glob("*/metrics.json"))
