"""callbacks.early_stopping.patience=N: Lightning's EarlyStopping on optimized_metric."""

from __future__ import annotations

import json

import pytest
import torch

from seqlab.errors import SettingError
from seqlab.train import train

HIHELLO = ["experiment=hihello", "trainer.max_epochs=200"]


def test_a_run_without_improvement_stops_after_patience_plus_one_epochs(make_cfg, tmp_path):
    # val/loss never falls by 10: epoch 0 sets the best, epochs 1-3 are the patience
    train(
        make_cfg(
            *HIHELLO, "callbacks.early_stopping.patience=3", "callbacks.early_stopping.min_delta=10"
        )
    )

    run = tmp_path / "run"
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert summary["epochs"] == 4 and summary["global_step"] == 4  # one step an epoch
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
    assert summary["epochs"] == 30


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
