"""train/loss_step: the running mean of the training loss every trainer.log_every_n_steps steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.metrics import TRAIN_LOSS, TRAIN_LOSS_STEP, task_metrics
from seqlab.train import train

# longtext: 6 batches of 32 windows an epoch
LONGTEXT = ["experiment=longtext", "trainer.max_epochs=4", "logger=tensorboard"]


def test_train_loss_is_logged_every_n_steps_and_falls(make_cfg, tmp_path):
    train(make_cfg(*LONGTEXT, "trainer.log_every_n_steps=5", bare=True))

    run = tmp_path / "run"
    steps = json.loads((run / "metrics.json").read_text())["global_step"]
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    points = events.Scalars(TRAIN_LOSS_STEP)
    # the 5th, 10th, ... optimizer step; Lightning numbers its log points from 0
    assert steps == 24
    assert [p.step for p in points] == [4, 9, 14, 19]
    assert points[-1].value < points[0].value  # the loss falls within the run
    assert len(events.Scalars(TRAIN_LOSS)) == 4  # and the epoch means are there as before


def test_metrics_json_is_the_same_whatever_the_interval(make_cfg, tmp_path):
    def summary(interval: int) -> dict:
        train(make_cfg(*LONGTEXT, f"trainer.log_every_n_steps={interval}", bare=True))
        summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
        (tmp_path / "run" / "metrics.json").unlink()
        return summary

    every_step, rarely = summary(1), summary(1000)

    assert set(every_step["final"]) == set(task_metrics("next_token"))  # no train/loss_step
    for key in ("final", "best", "best_epoch", "at_best"):
        assert every_step[key] == rarely[key]


def test_a_step_reads_nothing_off_the_device_between_log_points(make_cfg, monkeypatch):
    # every Tensor.item() of seqlab's and Lightning's: a host sync per step would grow with the
    # steps an epoch has (torch.optim's own reads of its step count, kept on the host, aside)
    calls = 0
    item = torch.Tensor.item
    torch_dir = str(Path(torch.__file__).parent)

    def counted(tensor: torch.Tensor) -> float:
        nonlocal calls
        calls += not sys._getframe(1).f_code.co_filename.startswith(torch_dir)
        return item(tensor)

    monkeypatch.setattr(torch.Tensor, "item", counted)

    def reads(batch_size: int) -> int:
        nonlocal calls
        calls = 0
        run = ["experiment=longtext", "trainer.max_epochs=1", f"data.batch_size={batch_size}"]
        train(make_cfg(*run, "logger=tensorboard", "trainer.log_every_n_steps=1000", bare=True))
        return calls

    assert reads(batch_size=64) == reads(batch_size=8)  # 3 steps, then 22
