"""Hydra multirun: parallel jobs, Optuna search, failed jobs, cluster launcher configs."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import pytest
import yaml
from conftest import CONF_DIR, run_script
from hydra import compose, initialize_config_dir

from seqlab.callbacks.summary import Diverged
from seqlab.errors import RefusedSettings, RunFailed, SettingError
from seqlab.train import train

# small, quiet jobs: the sweep's behaviour is under test, not the lesson
FAST = ["trainer.max_epochs=3", "callbacks.progress_bar=null", "callbacks.model_summary=null"]


def _sweep_dir(cwd: Path) -> Path:
    [sweep] = (cwd / "outputs" / "multirun").glob("*/*")
    return sweep


def _jobs(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}


def test_joblib_sweep_runs_2x2_jobs_each_its_own_tensorboard_run_and_reports(tmp_path):
    done = run_script(
        "train.py", "-m", "experiment=hihello", "model=rnn,lstm", "seed=0,1",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    sweep = _sweep_dir(tmp_path)
    jobs = _jobs(sweep)
    assert len(jobs) == 4
    for model in ("rnn", "lstm"):
        for seed in (0, 1):
            [name] = [n for n in jobs if f"model={model}" in n and f"seed={seed}" in n]
            assert jobs[name]["status"] == "completed"
            assert jobs[name]["num_threads"] == 1  # 2 jobs on this machine's cores, no more
            # TensorBoard names a run by its dir: one events file per job dir, named by overrides
            assert len(list((sweep / name).glob("events.out.tfevents.*"))) == 1
    assert not list(sweep.glob("events.out.tfevents.*"))

    report = run_script("report.py", str(sweep), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    with (sweep / "report.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 4 and {r["model"] for r in rows} == {"rnn", "lstm"}
    assert (sweep / "report.md").is_file()
    assert (sweep / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_optuna_search_writes_best_params_of_its_best_trial(tmp_path):
    done = run_script(
        "train.py", "-m", "hparams_search=optuna", "experiment=hihello",
        "hydra.sweeper.n_trials=3", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    sweep = _sweep_dir(tmp_path)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    jobs = _jobs(sweep)
    assert len(jobs) == 3
    best_job = min(jobs.values(), key=lambda job: job["best"]["val/loss"])
    assert results["best_value"] == pytest.approx(best_job["best"]["val/loss"])
    assert set(results["best_params"]) == {"optimizer.lr", "model.hidden_size", "model.cell"}
    report = run_script("report.py", str(sweep), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    with (sweep / "report.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert sorted(float(r["optimizer.lr"]) for r in rows) == sorted(
        float(job.split("optimizer.lr=")[1].split(",")[0]) for job in jobs
    )


def test_a_failed_job_is_recorded_and_the_others_finish(tmp_path):
    done = run_script(
        "train.py", "-m", "experiment=hihello", "model.cell=rnn,cnn,gru", *FAST, cwd=tmp_path
    )

    assert done.returncode != 0  # the sweep says that something failed
    jobs = _jobs(_sweep_dir(tmp_path))
    cell = {name: name.split("model.cell=")[1].split(",")[0] for name in jobs}
    statuses = {cell[name]: job["status"] for name, job in jobs.items()}
    assert statuses == {"rnn": "completed", "cnn": "failed", "gru": "completed"}
    [failed] = [job for job in jobs.values() if job["status"] == "failed"]
    assert "model.cell='cnn' is invalid: expected one of rnn, lstm, gru" in failed["error"]

    report = run_script("report.py", str(_sweep_dir(tmp_path)), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    with (_sweep_dir(tmp_path) / "report.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [r["status"] for r in rows] == ["completed", "completed", "failed"]


def test_a_diverging_loss_fails_the_run_with_its_reason(make_cfg, tmp_path):
    overrides = ["optimizer=sgd", "optimizer.lr=1e30", "model.nonlinearity=relu"]
    cfg = make_cfg("experiment=hihello", *overrides, bare=True)

    with pytest.raises(Diverged, match="is nan at epoch 0: training diverged"):
        train(cfg)

    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "failed" and "diverged" in summary["error"]


def test_a_run_that_never_validated_says_so_and_keeps_what_it_logged(make_cfg, tmp_path):
    # 6 steps an epoch: the run ends after 2, before the epoch's validation
    result = train(make_cfg("experiment=longtext", "++trainer.max_steps=2", bare=True))

    with pytest.raises(RunFailed, match="no validation ran, so optimized_metric val/loss was"):
        _ = result.optimized_value
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "completed" and "train/loss" in summary["final"]


def _hydra_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


# hydra/launcher=ray needs an environment of its own: tests/ray runs its sweeps there
@pytest.mark.parametrize("launcher", ["submitit_slurm", "submitit_local"])
def test_cluster_launcher_configs_compose(tmp_path, launcher):
    done = run_script("train.py", f"hydra/launcher={launcher}", "--cfg", "hydra", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "_target_: hydra_plugins." in done.stdout


def test_slurm_tasks_and_gpus_follow_the_trainer():
    cfg = _hydra_cfg(
        "hydra/launcher=submitit_slurm", "trainer=gpu", "trainer.devices=4", "trainer.num_nodes=2"
    )

    launcher = cfg.hydra.launcher
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 2)
    assert launcher._target_.endswith("SlurmLauncher")


@pytest.mark.parametrize("trainer", ["default", "cpu", "ddp_cpu"])
def test_a_slurm_job_without_gpus_asks_for_none(trainer):
    # sbatch refuses any GPU request on a cluster without GPUs ("Invalid generic resource")
    cfg = _hydra_cfg("hydra/launcher=submitit_slurm", f"trainer={trainer}")

    launcher = cfg.hydra.launcher
    assert launcher.gpus_per_node is None
    assert launcher.tasks_per_node == cfg.trainer.devices and launcher.partition is None


@pytest.mark.parametrize(
    "err",
    [SettingError("model.cell", "cnn", "expected one of rnn"), RefusedSettings("trainer", "no")],
)
def test_a_setting_error_survives_the_pickle_a_job_returns_it_in(err):
    back = pickle.loads(pickle.dumps(err))  # how a SLURM job's result reaches the sweep

    assert type(back) is type(err) and str(back) == str(err)
    assert (back.name, back.value, back.expected) == (err.name, err.value, err.expected)


def test_joblib_launcher_config_extends_the_plugin_one_job_at_a_time_per_worker():
    launcher = _hydra_cfg("hydra/launcher=joblib", "hydra.launcher.n_jobs=2").hydra.launcher

    assert launcher._target_.endswith("JoblibLauncher")
    assert (launcher.n_jobs, int(launcher.batch_size), launcher.pre_dispatch) == (2, 1, "all")
