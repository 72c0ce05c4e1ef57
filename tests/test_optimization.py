"""Optimizers and LR schedules: config groups that build torch.optim classes, as logged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CONF_DIR, QUIET, compose_train, snapshot
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.optim import lr_scheduler

from seqlab.config import instantiate_setting
from seqlab.nt_asgd import NTASGD
from seqlab.settings import check_train_config
from seqlab.train import instantiate_schedule, train

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "nt_asgd": NTASGD,
}
SCHEDULERS = {
    "plateau": lr_scheduler.ReduceLROnPlateau,
    "step": lr_scheduler.StepLR,
    "cosine": lr_scheduler.CosineAnnealingLR,
    "warmup": lr_scheduler.LinearLR,
}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _logged(run: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_the_groups_hold_these_options_only():
    assert _options("optimizer") == sorted(OPTIMIZERS)
    assert _options("scheduler") == sorted([*SCHEDULERS, "none"])


@pytest.mark.parametrize("option", sorted(OPTIMIZERS))
def test_every_optimizer_builds_its_torch_class_with_the_files_arguments(tmp_path, option):
    cfg = compose_train(tmp_path, "experiment=hihello", f"optimizer={option}")
    check_train_config(cfg)

    optimizer = instantiate_setting(cfg.optimizer, "optimizer")([torch.nn.Parameter(torch.ones(1))])

    assert type(optimizer) is OPTIMIZERS[option]
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.1  # experiment=hihello's
    for name, value in cfg.optimizer.items():
        if not name.startswith("_"):
            assert group[name] == (tuple(value) if name == "betas" else value)


@pytest.mark.parametrize("option", sorted(SCHEDULERS))
def test_every_scheduler_builds_its_torch_class_and_lightnings_keys(tmp_path, option):
    cfg = compose_train(tmp_path, "experiment=hihello", f"scheduler={option}")
    check_train_config(cfg)

    schedule = instantiate_schedule(cfg.scheduler)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    config = schedule.lightning(optimizer)

    assert type(config["scheduler"]) is SCHEDULERS[option]
    assert config["interval"] == cfg.scheduler.interval
    assert config.get("monitor") == cfg.scheduler.monitor
    assert (option == "plateau") == (config.get("monitor") == "val/loss")
    if option == "cosine":
        assert config["scheduler"].T_max == 50  # experiment=hihello's trainer.max_epochs


def test_no_scheduler_is_the_default(tmp_path):
    assert instantiate_schedule(compose_train(tmp_path, "experiment=hihello").scheduler) is None


def test_sgd_with_momentum_trains_with_torchs_momentum_and_the_checkpoint_says_so(tmp_path):
    run = tmp_path / "run"
    momentum = ["optimizer=sgd", "optimizer.momentum=0.9"]
    train(compose_train(run, "experiment=hihello", *momentum, *QUIET, "trainer.max_epochs=2"))

    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    [state] = checkpoint["optimizer_states"]
    assert state["param_groups"][0]["momentum"] == 0.9
    assert all("momentum_buffer" in s for s in state["state"].values())
    assert checkpoint["seqlab"]["optimization"] == {
        "optimizer": {
            "class": "torch.optim.sgd.SGD",
            "lr": 0.1,
            "momentum": 0.9,
            "nesterov": False,
            "weight_decay": 0.0,
        },
        "scheduler": None,
    }
    assert not {"optimizer", "lr", "scheduler"} & set(checkpoint["hyper_parameters"])
    assert _logged(run, "lr-SGD") == [(0, pytest.approx(0.1)), (1, pytest.approx(0.1))]


def test_plateau_divides_the_lr_after_each_epoch_that_does_not_improve_val_loss(tmp_path):
    # gradient ascent on the one hihello string: val/loss gets worse every epoch
    ascent = ["optimizer=sgd", "+optimizer.maximize=true", "scheduler=plateau"]
    run = tmp_path / "run"
    train(compose_train(run, "experiment=hihello", *ascent, *QUIET, "trainer.max_epochs=4"))

    val_losses = [loss for _, loss in _logged(run, "val/loss")]
    assert val_losses == sorted(val_losses) and len(set(val_losses)) == 4
    # the lr each epoch starts with: epoch 0 sets the best, each epoch after it is worse
    lrs = [lr for _, lr in _logged(run, "lr-SGD")]
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_warmup_raises_the_lr_linearly_step_by_step_then_holds_it(tmp_path):
    warmup = ["scheduler=warmup", "scheduler.total_iters=8", "scheduler.start_factor=0.2"]
    per_step = ["callbacks.lr_monitor.logging_interval=step", "trainer.log_every_n_steps=1"]
    run = tmp_path / "run"
    # longtext: 6 steps an epoch, Adam at 0.01
    train(
        compose_train(
            run, "experiment=longtext", *warmup, *per_step, *QUIET, "trainer.max_epochs=2"
        )
    )

    logged = _logged(run, "lr-Adam")
    assert [step for step, _ in logged] == list(range(12))
    expected = [0.01 * (0.2 + 0.8 * min(k, 8) / 8) for k in range(12)]
    assert [lr for _, lr in logged] == pytest.approx(expected)


def test_a_resume_with_another_lr_or_schedule_is_refused_and_changes_nothing(cli, tmp_path):
    lesson = ["experiment=hihello", "trainer.max_epochs=2", *QUIET]
    assert cli("train.py", *lesson, "hydra.run.dir=run").status == 0
    before = snapshot(tmp_path)

    lr = cli("train.py", *lesson, "optimizer.lr=0.05", "resume=run")
    schedule = cli("train.py", *lesson, "scheduler=step", "resume=run")

    assert lr.lines == [
        "error: resume='run' is invalid: it was trained with other settings: optimizer.lr=0.1"
    ]
    assert schedule.lines == [
        "error: resume='run' is invalid: it was trained with other settings: scheduler=none"
    ]
    assert snapshot(tmp_path) == before
