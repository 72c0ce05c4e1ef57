"""SIGINT / SIGTERM, a full disk, the end of training: how a run stops, and what it leaves.

The signals are real, sent to a real ``scripts/train.py`` process in the middle of an epoch.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import QUIET, ROOT

from seqlab.train import main, train

# a char-LSTM on one epoch of many steps: a signal lands mid-epoch (dropout draws from the RNG)
LONG_EPOCH = [
    "data=textfile",
    "data.path=corpus.txt",
    "data.sampling=stride",
    "data.seq_len=20",
    "data.batch_size=8",
    "model=lstm",
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.dropout=0.2",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=40",
    "+trainer.limit_val_batches=4",
    *QUIET,
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    words = random.Random(0).choices(
        ["to", "be", "or", "not", "that", "is", "the", "question"], k=40_000
    )
    (tmp_path / "corpus.txt").write_text(" ".join(words))
    return tmp_path / "corpus.txt"


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _stop_at(step: int, signal_name: str) -> list[str]:
    """Overrides that make the run send itself ``signal_name`` as step ``step`` starts."""
    target = "+callbacks.stop._target_=signal_at_step.SignalAtStep"
    return [target, f"+callbacks.stop.step={step}", f"+callbacks.stop.signal={signal_name}"]


def test_sigint_mid_epoch_saves_the_step_and_resumes_exactly(cli, tmp_path, corpus):
    assert cli("train.py", *LONG_EPOCH, "hydra.run.dir=full").status == 0

    stopped = cli("train.py", *LONG_EPOCH, *_stop_at(57, "SIGINT"), "hydra.run.dir=run")

    assert stopped.status == 130
    [line] = stopped.lines
    found = re.fullmatch(
        r"interrupted by SIGINT at epoch 1, step 58: run/checkpoints/last.ckpt saved; "
        r"continue with: python scripts/train.py (.*) resume=run",
        line,
    )
    assert found, line
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 58  # the step under way when the signal came, completed
    assert _summary(tmp_path / "run")["status"] == "interrupted"

    # the printed command, as the user would paste it (without the signal this time)
    command = [a for a in found.group(1).split() if not a.startswith("+callbacks.stop")]
    resumed = cli("train.py", *command, "resume=run")

    assert resumed.status == 0, resumed.stderr
    expected, got = _summary(tmp_path / "full"), _summary(tmp_path / "run")
    assert got["status"] == "completed"
    for key in ("epochs", "global_step", "final", "best", "best_epoch"):
        assert got[key] == expected[key], key


def test_sigterm_from_outside_in_the_first_epoch_leaves_a_run_to_resume(tmp_path, corpus):
    # one epoch of tens of thousands of steps: a minute's work, stopped a few seconds in
    corpus.write_text(corpus.read_text() * 20)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        *LONG_EPOCH,
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=1.0",  # the whole corpus: thousands of steps
        "hydra.run.dir=run",
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "run").glob("events.out.tfevents.*")):  # fit has started
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(3)  # the epoch has thousands of steps: well inside it
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 143, stderr
    step = int(
        re.search(
            r"interrupted by SIGTERM at epoch 0, step (\d+): run/checkpoints/last.ckpt saved",
            stderr,
        ).group(1)
    )
    summary = _summary(tmp_path / "run")
    assert (
        summary["status"] == "interrupted"
        and summary["error"] == "RunInterrupted: stopped by SIGTERM"
    )
    assert (
        torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
        == step
        > 0
    )


def test_last_checkpoint_is_the_final_epoch_and_eval_reproduces_metrics_json(cli, tmp_path):
    # val/acc peaks early on this lesson and stays: best.ckpt and last.ckpt are different epochs
    done = cli(
        "train.py",
        "experiment=longtext",
        "trainer.max_epochs=30",
        "optimized_metric=val/acc",
        *QUIET,
        "hydra.run.dir=run",
    )
    assert done.status == 0, done.stderr
    summary = _summary(tmp_path / "run")
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)

    assert last["epoch"] == 29
    assert best["epoch"] == summary["best_epoch"]["val/acc"] < 29

    for name, expected in (("last", summary["final"]), ("best", summary["at_best"])):
        shown = cli("eval.py", f"ckpt_path=run/checkpoints/{name}.ckpt")
        assert shown.status == 0, shown.stderr
        for metric in ("val/loss", "val/acc"):
            value = float(re.search(rf"{metric}\s+│\s+([\d.]+)", shown.stdout).group(1))
            assert value == pytest.approx(expected[metric], abs=1e-6), (name, metric)


def test_a_run_stopped_by_max_steps_mid_epoch_keeps_its_last_step(make_cfg, tmp_path):
    train(make_cfg("experiment=longtext", "++trainer.max_steps=9"))  # 6 steps an epoch

    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 9


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_survives(
    make_cfg, tmp_path, monkeypatch
):
    saves = []
    real_save = torch.save

    def disk_fills_up(obj, file, *args, **kwargs):
        saves.append(obj.get("epoch"))
        if len(saves) > 2:  # best.ckpt and last.ckpt of the first epoch fit, no more
            file.write(b"PK\x03\x04 the start of a checkpoint")
            raise OSError(28, "No space left on device")
        real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_fills_up)
    with pytest.raises(SystemExit) as stopped:
        main(make_cfg("experiment=longtext"))

    assert re.fullmatch(
        r"error: could not write .*/checkpoints/\w+\.ckpt: No space left on device",
        str(stopped.value),
    )
    summary = _summary(tmp_path / "run")
    assert summary["status"] == "failed" and "No space left on device" in summary["error"]
    assert not list((tmp_path / "run").rglob("*.tmp"))
    assert (
        torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    )


def test_a_diverged_loss_is_one_line_and_fails_the_run(cli, tmp_path):
    done = cli(
        "train.py",
        "experiment=hihello",
        "optimizer=sgd",
        "optimizer.lr=1e30",
        "model.nonlinearity=relu",
        *QUIET,
        "hydra.run.dir=run",
    )

    assert done.status == 1
    assert done.lines == [
        "error: val/loss is nan at epoch 0: training diverged (try a lower optimizer.lr or trainer.gradient_clip_val=1.0)"
    ]
    assert _summary(tmp_path / "run")["status"] == "failed"


def test_a_run_that_never_validated_is_one_line_and_keeps_its_summary(cli, tmp_path):
    done = cli(
        "train.py", "experiment=longtext", "++trainer.max_steps=2", *QUIET, "hydra.run.dir=run"
    )

    assert done.lines == [
        "error: no validation ran, so optimized_metric val/loss was never measured; "
        "metrics.json keeps what was logged (train/loss, train/acc)"
    ]
    summary = _summary(tmp_path / "run")
    assert summary["status"] == "completed" and {"train/loss", "train/acc"} <= set(summary["final"])
