"""debug=default|fdr|limit|overfit|profiler: each composed with the experiments and really run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from batch_probe import BatchProbe
from conftest import CONF_DIR, compose_train

from seqlab.settings import check_train_config
from seqlab.train import train

DEBUG = sorted(p.stem for p in (CONF_DIR / "debug").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# experiment=memory shrunk to a lesson's size: several shuffled batches an epoch
MEMORY = ["experiment=memory", "data.distance=10", "data.val_size=200"]
PROBE = "+callbacks.probe._target_=batch_probe.BatchProbe"


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _written(run_dir: Path) -> set[str]:
    return {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}  # not .lock


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("debug", DEBUG)
def test_every_debug_option_composes_with_every_experiment(tmp_path, debug, experiment):
    cfg = compose_train(tmp_path, f"experiment={experiment}", f"debug={debug}")

    check_train_config(cfg)  # every setting as train() checks it before building anything
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.devices == 1
    assert cfg.trainer.detect_anomaly is True
    assert not cfg.logger
    assert cfg.callbacks.model_checkpoint is None and cfg.callbacks.last_checkpoint is None


def test_debug_default_is_one_epoch_with_anomaly_detection_and_writes_only_metrics(
    make_cfg, tmp_path
):
    train(make_cfg(*MEMORY, "data.train_size=200", "debug=default", PROBE))

    run = tmp_path / "run"
    assert _summary(run)["epochs"] == 1 and _summary(run)["status"] == "completed"
    probe = BatchProbe.latest
    assert len(probe.train_inputs) == 4  # 200 sequences in batches of 64: the whole epoch
    assert all(probe.anomaly_detection)
    assert _written(run) == {"metrics.json"}  # no events, no checkpoints/


def test_anomaly_detection_is_off_without_debug(make_cfg):
    train(make_cfg(*MEMORY, "data.train_size=200", "trainer.max_epochs=1", PROBE, bare=True))

    assert not any(BatchProbe.latest.anomaly_detection)


def test_debug_fdr_runs_one_training_step_and_one_validation_step(make_cfg, tmp_path):
    train(make_cfg(*MEMORY, "data.train_size=200", "debug=fdr", PROBE))

    run = tmp_path / "run"
    summary = _summary(run)
    assert (summary["status"], summary["epochs"], summary["global_step"]) == ("completed", 1, 1)
    assert len(BatchProbe.latest.train_inputs) == 1 and BatchProbe.latest.val_batches == 1
    assert _written(run) == {"metrics.json"}


def test_fast_dev_run_with_the_default_callbacks_saves_no_checkpoint(make_cfg, tmp_path):
    train(make_cfg("experiment=hihello", "+trainer.fast_dev_run=true"))

    assert not (tmp_path / "run" / "checkpoints").exists()


def test_debug_limit_runs_three_epochs_of_a_few_batches(make_cfg, tmp_path):
    # 10,000 training sequences are 157 batches: 5 of them an epoch
    train(make_cfg(*MEMORY, "debug=limit", PROBE))

    summary = _summary(tmp_path / "run")
    assert (summary["epochs"], summary["global_step"]) == (3, 15)
    assert BatchProbe.latest.val_batches == 3 * 2


def test_debug_overfit_trains_on_the_same_batch_every_epoch(make_cfg, tmp_path):
    train(make_cfg(*MEMORY, "data.train_size=200", "debug=overfit", PROBE))

    inputs = BatchProbe.latest.train_inputs
    assert len(inputs) == 20  # one batch an epoch, of 4 without overfit_batches
    assert all(torch.equal(batch, inputs[0]) for batch in inputs)
    assert _summary(tmp_path / "run")["epochs"] == 20


def test_debug_profiler_writes_its_report_into_the_run_dir(make_cfg, tmp_path):
    train(make_cfg("experiment=hihello", "debug=profiler"))

    run = tmp_path / "run"
    report = (run / "fit-profile.txt").read_text()
    assert report.startswith("FIT Profiler Report")
    assert "training_step" in report and "run_training_epoch" in report
    assert _written(run) == {"metrics.json", "fit-profile.txt"}


LESSONS = ("charseq", "hihello", "hihello_exact", "longtext", "memory", "seoul", "sentiment")


@pytest.mark.parametrize(
    "experiment",
    [e if e in LESSONS else pytest.param(e, marks=pytest.mark.slow) for e in EXPERIMENTS],
)
def test_debug_fdr_trains_every_experiment(make_cfg, tmp_path, experiment):
    train(make_cfg(f"experiment={experiment}", "debug=fdr"))

    summary = _summary(tmp_path / "run")
    assert (summary["status"], summary["global_step"]) == ("completed", 1)


def test_a_logger_given_on_the_command_line_wins_over_the_debug_option(tmp_path):
    cfg = compose_train(tmp_path, "experiment=hihello", "debug=default", "logger=tensorboard")

    assert list(cfg.logger) == ["tensorboard"]
