"""What the report makes of each job's files: written by anyone, so a wrong type is a reason in
the error column, never a traceback, and a job's lock tells a running job from a killed one."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from seqlab.report import main
from seqlab.runlock import RunLock

OVERRIDES = ["model=lstm", "seed=1"]
# a job a seqlab run would leave, which each case below spoils in one way
GOOD = {
    "status": "completed",
    "optimized_metric": "val/loss",
    "epochs": 3,
    "wall_time_s": 1.5,
    "final": {"val/loss": 0.5},
    "best": {"val/loss": 0.25},
}


def make_job(sweep: Path, name: str, summary: str | bytes | None, overrides: str) -> Path:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(overrides)
    if summary is not None:
        data = summary if isinstance(summary, bytes) else summary.encode()
        (job / "metrics.json").write_bytes(data)
    return job


def report_rows(sweep: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    """The report's rows by job name; it must have said nothing on stderr."""
    assert main([str(sweep)]) == 0
    assert capsys.readouterr().err == ""
    with (sweep / "report.csv").open(newline="") as f:
        return {row["job"]: row for row in csv.DictReader(f)}


def spoiled(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


UNREADABLE = {
    "status a number": (spoiled(status=5), '"status" is 5, expected a status'),
    "status unknown": (
        spoiled(status="exploded"),
        "\"status\" is 'exploded', expected one of completed, failed, interrupted, running",
    ),
    "no status": (json.dumps({"epochs": 3}), '"status" is None, expected one of'),
    "epochs text": (spoiled(epochs="3"), "\"epochs\" is '3', expected a whole number"),
    "epochs true": (spoiled(epochs=True), '"epochs" is True, expected a whole number'),
    "epochs fraction": (spoiled(epochs=2.5), '"epochs" is 2.5, expected a whole number'),
    "wall time text": (spoiled(wall_time_s="1s"), "\"wall_time_s\" is '1s', expected a number"),
    "error a number": (spoiled(error=5), '"error" is 5, expected a message'),
    "best a word": (
        spoiled(best={"val/loss": "low"}),
        "\"best\" is {'val/loss': 'low'}, expected metric names and numbers",
    ),
    "best a bool": (spoiled(best={"val/loss": True}), "expected metric names and numbers"),
    "final a list": (spoiled(final=[1, 2]), '"final" is [1, 2], expected metric names'),
    "long status": (
        spoiled(status="x" * 500),
        f'"status" is \'{"x" * 36}..., expected one of',  # cut to 40 characters
    ),
    "not an object": ("[]", "[] is not a JSON object"),
    "not JSON": ("{", "not JSON (Expecting property name enclosed in double quotes"),
    "nested too deep": ("[" * 100_000, "not JSON (maximum recursion depth exceeded"),
    "not UTF-8": (b'{"status": "\xff"}', "not UTF-8 text (byte 12)"),
}


@pytest.mark.parametrize("summary, reason", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_metrics_json_of_wrong_types_is_unreadable_with_its_reason(
    tmp_path, capsys, summary, reason
):
    make_job(tmp_path, "good", json.dumps(GOOD), yaml.safe_dump(["model=rnn", "seed=1"]))
    make_job(tmp_path, "bad", summary, yaml.safe_dump(OVERRIDES))

    rows = report_rows(tmp_path, capsys)

    assert list(rows) == ["good", "bad"]  # the unreadable one is not ranked
    bad = rows["bad"]
    assert bad["status"] == "unreadable" and bad["model"] == "lstm"
    assert bad["error"].startswith("metrics.json: ") and reason in bad["error"]
    assert "\n" not in bad["error"] and bad["best/val/loss"] == ""
    assert (
        "1 of 2 jobs did not finish: model=lstm (unreadable)"
        in (tmp_path / "report.md").read_text()
    )


def test_a_diverged_metric_written_as_null_is_left_blank(tmp_path, capsys):
    summary = spoiled(best={"val/acc": 0.5, "val/loss": None}, final={"val/loss": float("nan")})
    make_job(tmp_path, "job", summary, yaml.safe_dump(OVERRIDES))

    [row] = report_rows(tmp_path, capsys).values()

    assert row["status"] == "completed" and row["error"] == ""
    assert row["best/val/acc"] == "0.5" and "best/val/loss" not in row


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ("model: lstm\n", "overrides.yaml: {'model': 'lstm'} is not a list of overrides"),
        ("[1, 2]\n", "overrides.yaml: [1, 2] is not a list of overrides"),
        ("!!python/object/apply:os.system ['touch RAN']\n", "overrides.yaml: not YAML"),
    ],
    ids=["a mapping", "numbers", "a python tag"],
)
def test_overrides_that_are_not_a_list_of_strings_are_ignored_and_said_so(
    tmp_path, capsys, monkeypatch, overrides, reason
):
    make_job(tmp_path, "job", json.dumps(GOOD), overrides)
    monkeypatch.chdir(tmp_path)  # where os.system would have left RAN

    [row] = report_rows(tmp_path, capsys).values()

    assert row["status"] == "completed" and row["best/val/loss"] == "0.25"
    assert row["error"].startswith(reason) and row["error"].endswith("(ignored)")
    assert "model" not in row
    assert not (tmp_path / "RAN").exists()


def test_override_keys_that_look_like_markup_are_shown_as_text(tmp_path, capsys):
    for seed in (1, 2):
        make_job(tmp_path, f"job{seed}", json.dumps(GOOD), yaml.safe_dump([f"[/b]x={seed}"]))

    assert main([str(tmp_path)]) == 0

    assert "[/b]x" in capsys.readouterr().out


@contextmanager
def lock_held_elsewhere(run_dir: Path) -> Iterator[None]:
    code = "import sys; from seqlab.runlock import RunLock; RunLock.acquire(sys.argv[1], 'k', 'v')"
    code += "; print(flush=True); sys.stdin.read()"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    holder.stdout.readline()  # locked
    try:
        yield
    finally:
        holder.kill()
        holder.wait()


def test_a_job_without_an_end_is_running_while_its_lock_is_held_and_killed_after(tmp_path, capsys):
    running = spoiled(status="running")
    lock_free = make_job(tmp_path, "lock free", running, yaml.safe_dump(["seed=1"]))
    RunLock.acquire(lock_free, "k", "v").release()  # a .lock its run no longer holds
    make_job(tmp_path, "no lock", running, yaml.safe_dump(["seed=2"]))  # from before locks
    make_job(tmp_path, "started", None, yaml.safe_dump(["seed=3"]))  # died during start-up
    held = make_job(tmp_path, "training", running, yaml.safe_dump(["seed=4"]))
    first_epoch = make_job(tmp_path, "first epoch", None, yaml.safe_dump(["seed=5"]))

    with lock_held_elsewhere(held), lock_held_elsewhere(first_epoch):
        rows = report_rows(tmp_path, capsys)

    assert {name: row["status"] for name, row in rows.items()} == {
        "first epoch": "running",
        "lock free": "killed",
        "no lock": "killed",
        "started": "killed",
        "training": "running",
    }
