"""Sweeps that ended early, really run: a joblib worker killed, the basic launcher stopped by
Ctrl-C. The report tells finished jobs from killed and never-run ones, from the sweep's plan."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import QUIET, ROOT, run_script

from seqlab.report import main
from seqlab.sweeps import planned_jobs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def start_script(script: str, *args: str, cwd: Path) -> subprocess.Popen:
    """``python scripts/<script> args...`` started from ``cwd``, its output in ``cwd``/out."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(ROOT / "scripts" / script), *args]
    out = (cwd / "out").open("w")
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(process: subprocess.Popen, cwd: Path, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not done():
        assert process.poll() is None, (cwd / "out").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)


def summary_of(sweep: Path, pattern: str) -> dict:
    """The metrics.json of the one job dir matching ``pattern``, or {} before it exists."""
    found = [p for p in sweep.glob(f"*/*/{pattern}/metrics.json") if p.is_file()]
    return json.loads(found[0].read_text()) if found else {}


def parent_of(pid: int) -> int:
    # /proc/PID/stat: pid (command) state ppid ...; the command may hold spaces and parentheses
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


# the basic launcher: one process, one job after the other; stopped by Ctrl-C in the first
STOPPED = ["data=charseq", "model=rnn,gru", "trainer.max_epochs=100000", "logger=none"]
STOPPED += ["callbacks=none"]


@pytest.fixture(scope="module")
def stopped_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("stopped")
    sweep = start_script("train.py", "-m", *STOPPED, cwd=cwd)
    multirun = cwd / "outputs" / "multirun"
    wait_for(sweep, cwd, lambda: summary_of(multirun, "*model=rnn*").get("epochs", 0) >= 1)
    sweep.send_signal(signal.SIGINT)
    assert sweep.wait(timeout=60) == 130  # the job is recorded interrupted, the sweep stops
    said = (cwd / "out").read_text().splitlines()
    assert "sweep stopped: 1 of 2 jobs did not run: model=gru" in said
    assert any(line.startswith("interrupted by SIGINT at epoch ") for line in said)
    [sweep_dir] = multirun.glob("*/*")
    assert f"report:    python scripts/report.py {sweep_dir.relative_to(cwd)}" in said
    return sweep_dir


def test_the_plan_of_a_basic_sweep_is_its_jobs_in_launch_order(stopped_sweep):
    plan = planned_jobs(stopped_sweep)

    rest = ["trainer.max_epochs=100000", "logger=none", "callbacks=none"]
    assert plan == [["data=charseq", f"model={model}", *rest] for model in ("rnn", "gru")]
    [ran] = [p for p in stopped_sweep.iterdir() if p.is_dir()]
    assert yaml.safe_load((ran / ".hydra" / "overrides.yaml").read_text()) == plan[0]


@pytest.mark.parametrize(
    "change, jobs",
    [
        (lambda hydra: hydra["sweeper"].update(params={"seed": "0,1"}), 4),
        (
            lambda hydra: hydra["sweeper"].update(_target_="hydra_plugins.optuna.OptunaSweeper"),
            None,
        ),
        (lambda hydra: hydra["overrides"]["task"].append("data=glob(*)"), None),
        (lambda hydra: hydra["overrides"]["task"].append("seed=range(0,10000000000)"), None),
        (lambda hydra: hydra["sweeper"].update(params={"seed": "${oc.env:SEEDS}"}), None),
        (lambda hydra: hydra["overrides"].update(task="model=rnn"), None),
        (lambda hydra: hydra["overrides"]["task"].append("model=rnn,("), None),
    ],
    ids=["params", "optuna", "glob", "huge", "interpolated", "not a list", "not an override"],
)
def test_a_plan_is_known_only_where_the_file_says_it_plainly(stopped_sweep, tmp_path, change, jobs):
    config = yaml.safe_load((stopped_sweep / "multirun.yaml").read_text())
    change(config["hydra"])
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(config))

    plan = planned_jobs(tmp_path)

    assert (plan if plan is None else len(plan)) == jobs
    if jobs:  # the sweeper's own params come first, as Hydra's basic sweeper puts them
        assert plan[0][:2] == ["seed=0", "data=charseq"]


def test_no_plan_without_a_readable_multirun_yaml(tmp_path):
    assert planned_jobs(tmp_path) is None
    (tmp_path / "multirun.yaml").write_text("hydra: [unclosed")
    assert planned_jobs(tmp_path) is None


def test_a_sweep_stopped_by_ctrl_c_reports_the_interrupted_job_and_the_one_never_run(
    stopped_sweep, tmp_path, capsys
):
    sweep = Path(shutil.copytree(stopped_sweep, tmp_path / "sweep"))

    assert main([str(sweep)]) == 0

    [ran] = [p.name for p in sweep.iterdir() if p.is_dir()]
    rows = read_csv(sweep / "report.csv")
    # both unranked, in name order; the job never run is named as Hydra would have named its dir
    assert [(row["job"], row["model"], row["status"]) for row in rows] == [
        (ran.replace("model=rnn", "model=gru"), "gru", "not run"),
        (ran, "rnn", "interrupted"),
    ]
    line = "2 of 2 jobs did not finish: model=gru (not run), model=rnn (interrupted)"
    assert line in (sweep / "report.md").read_text().splitlines()
    assert line in capsys.readouterr().out.splitlines()
    assert (sweep / "report.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_joblib_sweep_with_a_worker_killed_reports_killed_and_never_run_jobs(tmp_path):
    # two workers: the 1-epoch job ends and the third starts in its worker; the fourth waits
    sweep = start_script(
        "train.py", "-m", "experiment=longtext", "trainer.max_epochs=1,1000,1001,1002",
        *QUIET, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cwd=tmp_path,
    )  # fmt: skip
    multirun = tmp_path / "outputs" / "multirun"

    def job(n: str) -> dict:
        return summary_of(multirun, f"*trainer.max_epochs={n}")

    wait_for(
        sweep,
        tmp_path,
        lambda: (
            job("1").get("status") == "completed"
            and job("1000").get("epochs", 0) >= 1
            and job("1001").get("epochs", 0) >= 1
        ),
    )
    [killed] = multirun.glob("*/*/*trainer.max_epochs=1000")
    worker = json.loads((killed / ".lock").read_text())["pid"]  # the process training there
    assert parent_of(worker) == sweep.pid  # a joblib worker of this sweep
    os.kill(worker, signal.SIGKILL)
    assert sweep.wait(timeout=60) == 1
    said = (tmp_path / "out").read_text().splitlines()
    assert said[-1].startswith("error: the sweep stopped: a job's worker process was killed")
    assert said[-1].endswith("); scripts/report.py on the sweep dir shows which jobs ran")
    [sweep_dir] = multirun.glob("*/*")
    assert job("1000")["status"] == "running"  # what the killed job's own file still says

    report = run_script("report.py", str(sweep_dir), cwd=tmp_path)

    assert report.returncode == 0, report.stderr
    rows = read_csv(sweep_dir / "report.csv")
    # joblib ended the other running worker with the sweep: killed too
    assert [(row["trainer.max_epochs"], row["status"]) for row in rows] == [
        ("1", "completed"),
        ("1000", "killed"),
        ("1001", "killed"),
        ("1002", "not run"),
    ]
    line = (
        "3 of 4 jobs did not finish: trainer.max_epochs=1000 (killed), "
        "trainer.max_epochs=1001 (killed), trainer.max_epochs=1002 (not run)"
    )
    assert line in (sweep_dir / "report.md").read_text().splitlines()
    assert line in report.stdout.splitlines()
