"""A run dir is never deleted or changed by mistake: a refused run removes only what it made."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import QUIET, snapshot

LESSON = ["experiment=hihello", "trainer.max_epochs=3", *QUIET]


def test_resume_of_a_dir_killed_during_start_up_keeps_it_whole(cli, tmp_path):
    # what a sweep job killed while starting leaves: its config and an empty log
    job = tmp_path / "job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (job / "train.log").write_text("")
    before = snapshot(tmp_path)

    done = cli("train.py", *LESSON, "resume=job")

    assert done.status == 1
    assert done.lines == [
        f"error: resume='job' is invalid: nothing to resume: no {job}/checkpoints/last.ckpt"
    ]
    assert snapshot(tmp_path) == before


def test_resume_of_the_current_dir_keeps_it(cli, tmp_path):
    before = snapshot(tmp_path)

    done = cli("train.py", *LESSON, "resume=.")

    assert done.status == 1 and "nothing to resume" in done.lines[0]
    assert Path.cwd() == tmp_path and tmp_path.is_dir()
    assert snapshot(tmp_path) == before


def test_rejected_resume_of_a_completed_run_changes_nothing_in_it(cli, tmp_path):
    assert cli("train.py", *LESSON, "hydra.run.dir=run").status == 0
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    before = snapshot(tmp_path)

    done = cli("train.py", *LESSON, "++data.num_workers=-1", "resume=run")

    assert done.lines == [
        "error: data.num_workers=-1 is invalid: expected 0 (load in this process) or more"
    ]
    assert snapshot(tmp_path) == before
    assert summary["status"] == "completed" and summary["final"] and summary["best"]


def test_a_new_run_into_a_dir_holding_a_run_is_refused_before_anything_is_written(cli, tmp_path):
    assert cli("train.py", *LESSON, "hydra.run.dir=run").status == 0
    before = snapshot(tmp_path)

    done = cli("train.py", *LESSON, "model=gru", "hydra.run.dir=run")

    assert done.lines == [
        "error: hydra.run.dir='run' is invalid: it already holds a run: "
        "continue it with resume=DIR, or pick a new dir"
    ]
    assert snapshot(tmp_path) == before


def test_a_refused_run_removes_the_dirs_made_for_it_and_only_those(cli, tmp_path):
    (tmp_path / "outputs" / "2026-01-01").mkdir(parents=True)
    before = snapshot(tmp_path)

    done = cli("train.py", "model.cell=cnn", "hydra.run.dir=outputs/new/deeper/run")

    assert done.status == 1
    assert snapshot(tmp_path) == before


def test_resume_continues_a_finished_run_without_training_it_again(cli, tmp_path):
    assert cli("train.py", *LESSON, "hydra.run.dir=run").status == 0
    first = json.loads((tmp_path / "run" / "metrics.json").read_text())

    done = cli("train.py", *LESSON, "resume=run")

    again = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert done.status == 0, done.stderr
    assert (again["epochs"], again["global_step"]) == (first["epochs"], first["global_step"])
    assert again["final"] == first["final"] and again["best"] == first["best"]


def test_a_resumed_run_continues_its_metrics_csv(cli, tmp_path):
    csv_run = ["experiment=longtext", "logger=csv", *QUIET]
    assert cli("train.py", *csv_run, "trainer.max_epochs=3", "hydra.run.dir=run").status == 0

    done = cli("train.py", *csv_run, "trainer.max_epochs=5", "resume=run")

    assert done.status == 0, done.stderr
    with (tmp_path / "run" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    epochs = [int(r["epoch"]) for r in rows if r.get("val/loss")]
    assert epochs == [0, 1, 2, 3, 4]  # the first process's epochs kept, each epoch once
