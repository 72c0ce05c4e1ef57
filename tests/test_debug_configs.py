"""debug=default|fdr|limit|overfit|profiler: short runs that find a bug, on any experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONF_DIR, compose_train

from seqlab.train import train

# a classification task with 4 training batches an epoch: a step count tells epochs apart
MEMORY = [
    "experiment=memory",
    "model=lstm",
    "data.train_size=200",
    "data.val_size=50",
    "data.distance=10",
]
STEPS_PER_EPOCH = 4
DEBUG = sorted(p.stem for p in (CONF_DIR / "debug").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


class BatchProbe(pl.Callback):
    """What each training step saw: its inputs, and whether autograd's anomaly mode was on.
    Built by Hydra inside ``train()`` (:data:`PROBE`): the latest one is ``BatchProbe.latest``."""

    latest: ClassVar[BatchProbe | None] = None

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []
        self.anomaly: list[bool] = []
        BatchProbe.latest = self

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx) -> None:
        self.inputs.append(batch.inputs.clone())
        self.anomaly.append(torch.is_anomaly_enabled())


PROBE = "+callbacks.probe._target_=test_debug_configs.BatchProbe"


def _summary(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("debug", DEBUG)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_debug_option_wins_over_every_experiment(tmp_path, experiment, debug):
    cfg = compose_train(tmp_path, f"experiment={experiment}", f"debug={debug}")

    assert cfg.task_name == experiment  # the experiment is still there
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.devices == 1
    assert cfg.trainer.detect_anomaly is True
    assert cfg.logger is None or len(cfg.logger) == 0
    assert cfg.callbacks.model_checkpoint is None and cfg.callbacks.last_checkpoint is None


def test_default_runs_one_epoch_with_anomaly_detection_and_writes_no_logs_or_checkpoints(
    make_cfg, tmp_path
):
    train(make_cfg("experiment=hihello", "debug=default", PROBE))

    run = tmp_path / "run"
    assert _summary(run)["epochs"] == 1 and _summary(run)["status"] == "completed"
    assert BatchProbe.latest.anomaly == [True]
    assert not list(run.rglob("events.out.tfevents*")) and not (run / "checkpoints").exists()
    assert not (run / "lightning_logs").exists()


def test_without_debug_anomaly_detection_is_off(make_cfg):
    train(make_cfg("experiment=hihello", "trainer.max_epochs=1", PROBE, bare=True))

    assert BatchProbe.latest.anomaly == [False]


def test_fdr_runs_one_training_step(make_cfg, tmp_path):
    train(make_cfg(*MEMORY, "debug=fdr", PROBE))

    summary = _summary(tmp_path / "run")
    assert summary["status"] == "completed"
    assert summary["global_step"] == 1 and len(BatchProbe.latest.inputs) == 1
    assert "val/acc" in summary["final"]  # one validation step ran too


def test_limit_runs_three_epochs_of_a_few_batches(make_cfg, tmp_path):
    train(make_cfg(*MEMORY, "debug=limit", "trainer.limit_train_batches=2"))

    summary = _summary(tmp_path / "run")
    assert summary["epochs"] == 3 and summary["global_step"] == 3 * 2 < 3 * STEPS_PER_EPOCH


def test_limit_runs_a_lesson_of_one_batch(make_cfg, tmp_path):
    train(make_cfg("experiment=hihello", "debug=limit"))

    assert _summary(tmp_path / "run")["global_step"] == 3


def test_overfit_trains_on_the_same_batch_every_epoch(make_cfg, tmp_path):
    train(make_cfg(*MEMORY, "debug=overfit", "trainer.max_epochs=5", PROBE))

    summary = _summary(tmp_path / "run")
    inputs = BatchProbe.latest.inputs
    assert summary["epochs"] == 5 and summary["global_step"] == len(inputs) == 5
    assert all(torch.equal(batch, inputs[0]) for batch in inputs)


def test_without_overfit_the_epochs_see_other_batches(make_cfg):
    train(make_cfg(*MEMORY, "trainer.max_epochs=2", "+trainer.limit_train_batches=1", PROBE))

    first, second = BatchProbe.latest.inputs
    assert not torch.equal(first, second)  # shuffled: overfit's sameness is its own


def test_profiler_writes_its_report_into_the_run_dir(make_cfg, tmp_path):
    train(make_cfg("experiment=hihello", "debug=profiler"))

    report = (tmp_path / "run" / "fit-profile.txt").read_text()
    assert "training_step" in report and "run_training_epoch" in report
