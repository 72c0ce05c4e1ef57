"""`python scripts/report.py DIR`: the table and chart of a sweep, from jobs really trained."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import QUIET, compose_train, run_script

from seqlab.metrics import VAL_ACC, VAL_LOSS
from seqlab.report import collect, main, report_figure, sort_jobs, val_loss_curve
from seqlab.train import train

# one epoch of lstm against four of rnn: sorted by name, lstm comes first; by loss, rnn does
JOBS = {
    "model=lstm,trainer.max_epochs=1": ["model=lstm", "trainer.max_epochs=1"],
    "model=rnn,trainer.max_epochs=4": ["model=rnn", "trainer.max_epochs=4"],
}
# in overrides.yaml but not in the job's dir name: how the sweep ran, not what the job is
HOW_IT_RAN = ["hydra/launcher=joblib", "hparams_search=hihello_optuna"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_overrides(job_dir: Path, overrides: list[str]) -> None:
    # what Hydra writes for each job; compose_train does not
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))


@pytest.fixture(scope="module")
def trained_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sweep = tmp_path_factory.mktemp("multirun") / "12-00-00"
    for name, overrides in JOBS.items():
        # "=" and "," in paths.output_dir would need quoting in an override: train under a
        # plain name, then give the dir its Hydra name
        train(compose_train(sweep / "job", "experiment=hihello", *QUIET, *overrides))
        (sweep / "job").rename(sweep / name)
        write_overrides(sweep / name, [*overrides, *HOW_IT_RAN])
    return sweep


@pytest.fixture
def sweep(trained_sweep: Path, tmp_path: Path) -> Path:
    """A copy of the trained sweep that a test may add jobs and reports to."""
    return Path(shutil.copytree(trained_sweep, tmp_path / "sweep"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def best_val_loss(job_dir: Path) -> float:
    return json.loads((job_dir / "metrics.json").read_text())["best"][VAL_LOSS]


def test_sweep_report_ranks_jobs_by_best_val_loss(sweep, capsys):
    assert main([str(sweep)]) == 0

    ranked = sorted(JOBS, key=lambda name: best_val_loss(sweep / name))
    assert ranked != sorted(JOBS)  # else a report left in name order would pass
    rows = read_csv(sweep / "report.csv")
    assert [row["job"] for row in rows] == ranked
    assert [float(row[f"best/{VAL_LOSS}"]) for row in rows] == [
        pytest.approx(best_val_loss(sweep / name)) for name in ranked
    ]
    assert [(row["model"], row["trainer.max_epochs"]) for row in rows] == [
        ("rnn", "4"),
        ("lstm", "1"),
    ]
    assert {row["status"] for row in rows} == {"completed"}
    assert [row["epochs"] for row in rows] == ["4", "1"]
    header = list(rows[0])
    assert header[:3] == ["job", "model", "trainer.max_epochs"]
    assert not [c for c in header if c.startswith("hydra") or c == "hparams_search"]

    markdown = (sweep / "report.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| model=")]
    assert [line.split(" | ")[0].removeprefix("| ") for line in table] == ranked

    png = (sweep / "report.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    # the chart's lines: one point per epoch, ending at the job's final val/loss
    for name in JOBS:
        steps, losses = val_loss_curve(sweep / name)
        summary = json.loads((sweep / name / "metrics.json").read_text())
        assert len(steps) == summary["epochs"]
        assert losses[-1] == pytest.approx(summary["final"][VAL_LOSS])

    # the console table: a row per job, best first, named by what the sweep varied
    console = [line for line in capsys.readouterr().out.splitlines() if "completed" in line]
    assert len(console) == 2 and " rnn " in console[0] and " lstm " in console[1]


def test_failed_and_killed_jobs_come_last_with_their_status(sweep, capsys):
    failed, killed = sweep / "model=cnn,trainer.max_epochs=1", sweep / "model=gru,seed=3"
    error = "SettingError: model.cell='cnn' is invalid: expected one of RNN, LSTM, GRU"
    write_overrides(failed, ["model=cnn", "trainer.max_epochs=1"])
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "error": error}))
    write_overrides(killed, ["model=gru", "seed=3"])  # killed before metrics.json was written

    assert main([str(sweep)]) == 0

    rows = read_csv(sweep / "report.csv")
    assert [row["status"] for row in rows] == ["completed", "completed", "failed", "killed"]
    assert [row["job"] for row in rows[2:]] == [failed.name, killed.name]
    assert rows[2]["error"] == error and rows[2]["model"] == "cnn"
    assert rows[3]["seed"] == "3" and rows[3][f"best/{VAL_LOSS}"] == ""
    markdown = (sweep / "report.md").read_text()
    assert f"| failed | {error} |" in markdown and "| killed |" in markdown
    unfinished = (
        "2 of 4 jobs did not finish: model=cnn,trainer.max_epochs=1 (failed), model=gru,seed=3 "
        "(killed)"
    )
    assert unfinished in markdown.splitlines()
    assert (sweep / "report.png").read_bytes().startswith(PNG_SIGNATURE)
    jobs, _ = collect([sweep])
    curves, bars = report_figure(sort_jobs(jobs, VAL_LOSS), VAL_LOSS).axes
    assert sorted(line.get_label() for line in curves.lines) == sorted(JOBS)  # no line: no curve
    assert [label.get_text() for label in bars.get_yticklabels()] == [row["job"] for row in rows]
    assert {"failed", "killed"} <= {text.get_text().strip() for text in bars.texts}
    console = capsys.readouterr().out
    assert "failed" in console and "killed" in console and unfinished in console


def test_single_run_dir_gets_its_report_inside(trained_sweep, tmp_path):
    run = Path(shutil.copytree(trained_sweep / "model=rnn,trainer.max_epochs=4", tmp_path / "run"))

    assert main([str(run)]) == 0

    [row] = read_csv(run / "report.csv")
    assert row["job"] == "run" and row["status"] == "completed"
    assert float(row[f"best/{VAL_LOSS}"]) == pytest.approx(best_val_loss(run))
    assert (run / "report.png").read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing beside it


def test_several_run_dirs_report_into_their_common_parent_or_out(sweep, tmp_path):
    runs = [str(sweep / name) for name in JOBS]

    assert main(runs) == 0
    assert len(read_csv(sweep / "report.csv")) == len(JOBS)

    assert main([*runs, "--out", str(tmp_path / "elsewhere")]) == 0
    assert {row["job"] for row in read_csv(tmp_path / "elsewhere" / "report.csv")} == set(JOBS)


@pytest.mark.parametrize(
    ("exists", "problem"),
    [
        (False, "no such directory"),
        (True, "no runs in it (no metrics.json or .hydra dir below it)"),
    ],
    ids=["missing", "empty"],
)
def test_a_dir_without_jobs_is_one_error_line_and_nothing_written(
    tmp_path, capsys, exists, problem
):
    path = tmp_path / "outputs" / "nope"
    if exists:
        path.mkdir(parents=True)

    assert main([str(path)]) == 2

    assert capsys.readouterr().err.splitlines() == [f"error: {path}: {problem}"]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def fake_job(sweep: Path, overrides: list[str], status: str, best: dict[str, float]) -> None:
    """A job dir as a sweep of experiment=memory leaves it, without the training."""
    job = sweep / ",".join(overrides)
    write_overrides(job, overrides)
    summary = {"status": status, "optimized_metric": VAL_ACC, "best": best, "final": best}
    (job / "metrics.json").write_text(json.dumps(summary))


def test_two_varied_settings_get_a_grid_of_the_best_optimized_metric(tmp_path, capsys):
    sweep = tmp_path / "multirun"
    accuracy = {
        ("rnn", "5"): 1.0, ("rnn", "20"): 0.62, ("rnn", "100"): 0.26,
        ("lstm", "5"): 1.0, ("lstm", "20"): 1.0, ("lstm", "100"): 0.98,
        ("gru", "5"): 1.0, ("gru", "20"): 0.99,
    }  # fmt: skip
    for (model, distance), acc in accuracy.items():
        # val/loss ranks them otherwise: the grid must show the optimised val/acc
        best = {VAL_ACC: acc, VAL_LOSS: acc}
        fake_job(sweep, [f"model={model}", f"data.distance={distance}"], "completed", best)
    fake_job(sweep, ["model=gru", "data.distance=100"], "failed", {})

    assert main([str(sweep)]) == 0

    markdown = (sweep / "report.md").read_text().splitlines()
    start = markdown.index(f"## Best {VAL_ACC}: data.distance x model")
    # distances by size, not as strings; model (fewer values) across
    assert markdown[start + 2 : start + 7] == [
        "| data.distance \\ model | gru | lstm | rnn |",
        "|---|---:|---:|---:|",
        "| 5 | 1.0000 | 1.0000 | 1.0000 |",
        "| 20 | 0.9900 | 1.0000 | 0.6200 |",
        "| 100 | failed | 0.9800 | 0.2600 |",
    ]
    console = capsys.readouterr().out
    assert f"best {VAL_ACC}: data.distance x model" in console
    [row] = [line for line in console.splitlines() if "0.9800" in line and "failed" in line]
    assert [cell.strip() for cell in row.split("│")[1:5]] == ["100", "failed", "0.9800", "0.2600"]


def test_one_varied_setting_gets_no_grid(tmp_path, capsys):
    sweep = tmp_path / "multirun"
    for model in ("rnn", "lstm"):
        fake_job(sweep, [f"model={model}", "data.distance=5"], "completed", {VAL_ACC: 1.0})

    assert main([str(sweep)]) == 0

    assert "## Best" not in (sweep / "report.md").read_text()
    assert " x " not in capsys.readouterr().out


def test_report_script_exits_2_on_a_missing_path(tmp_path):
    done = run_script("report.py", "outputs/multirun/nope", cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: outputs/multirun/nope: no such directory"]
    assert list(tmp_path.iterdir()) == []
