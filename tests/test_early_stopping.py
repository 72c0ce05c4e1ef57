"""callbacks.early_stopping.patience=N: Lightning's EarlyStopping on optimized_metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import QUIET

from seqlab.errors import SettingError
from seqlab.train import train


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


HIHELLO = ["experiment=hihello", "trainer.max_epochs=200"]
# val/loss never falls by 10: epoch 0 sets the best, epochs 1-3 are the patience
NO_IMPROVEMENT = ["callbacks.early_stopping.patience=3", "callbacks.early_stopping.min_delta=10"]


def test_a_run_without_improvement_stops_after_patience_plus_one_epochs(make_cfg, tmp_path):
    train(make_cfg(*HIHELLO, *NO_IMPROVEMENT))

    run = tmp_path / "run"
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert summary["epochs"] == 4 and summary["global_step"] == 4  # one step an epoch
    assert summary["stopped_early"]["epoch"] == 3
    assert "did not improve in the last 3 records" in summary["stopped_early"]["reason"]
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 3 and last["global_step"] == 4


def test_early_stopping_is_off_by_default(make_cfg, tmp_path):
    # the same unreachable improvement, without a patience: every epoch runs
    train(
        make_cfg(
            "experiment=hihello", "trainer.max_epochs=30", "callbacks.early_stopping.min_delta=10"
        )
    )

    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["epochs"] == 30 and "stopped_early" not in summary


def test_a_patience_on_a_maximised_metric_follows_its_mode(make_cfg, tmp_path):
    # val/acc is maximised: a rise of 10 never comes either
    overrides = ["optimized_metric=val/acc", "callbacks.early_stopping.patience=2"]
    train(make_cfg(*HIHELLO, *overrides, "callbacks.early_stopping.min_delta=10"))

    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["epochs"] == 3


@pytest.mark.parametrize(
    ("patience", "expected"),
    [("-1", "expected a whole number >= 0"), ("x", "expected a whole number")],
)
def test_a_bad_patience_is_one_line_naming_it(make_cfg, tmp_path, patience, expected):
    cfg = make_cfg(*HIHELLO, f"callbacks.early_stopping.patience={patience}")

    with pytest.raises(
        SettingError, match=f"^callbacks.early_stopping.patience=.* is invalid: {expected}"
    ):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_an_interrupted_run_resumed_stops_at_the_same_epoch(cli, tmp_path):
    # the patience counted before the interruption is in last.ckpt: without it the resumed run
    # would start counting again and train 3 more epochs
    run = [*HIHELLO, *NO_IMPROVEMENT, *QUIET]
    stop = ["+callbacks.stop._target_=signal_at_step.SignalAtStep", "+callbacks.stop.step=2"]

    stopped = cli("train.py", *run, *stop, "hydra.run.dir=run")
    assert stopped.status == 130, stopped.stderr
    # during epoch 2's only step: the epoch ends, and epoch 3 does not start
    assert _summary(tmp_path / "run")["epochs"] == 3
    resumed = cli("train.py", *run, "resume=run")

    assert resumed.status == 0, resumed.stderr
    summary = _summary(tmp_path / "run")
    assert (summary["status"], summary["epochs"], summary["stopped_early"]["epoch"]) == (
        "completed",
        4,
        3,
    )
