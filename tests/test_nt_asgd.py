"""NT-ASGD: the non-monotone trigger, the averages, evaluation and checkpoints on the averages,
and a resumed run that switches where the uninterrupted one did."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest
import torch
from conftest import QUIET

from seqlab.checkpoint import load_checkpoint
from seqlab.nt_asgd import NTASGD, TRAINING_WEIGHTS


def _switches(losses: list[float], nonmono: int) -> list[bool]:
    optimizer = NTASGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, nonmono=nonmono)
    return [optimizer.observe(loss, epoch) for epoch, loss in enumerate(losses)]


def test_it_switches_once_a_loss_is_worse_than_the_best_but_the_last_nonmono():
    # nonmono 2: at epoch 5 the best of all but the last two (5, 4, 3) is 3, and 3.1 > 3;
    # at epoch 3, 3.5 is worse than the last ones but not than the best before them (5)
    assert _switches([5, 4, 3, 3.5, 3.2, 3.1, 9], 2) == [False] * 5 + [True, False]
    assert _switches([5, 4, 3, 2.5, 2.4, 2.3, 2.2], 2) == [False] * 7  # always improving
    assert _switches([1, 9, 9, 9, 9, 9], 5) == [False] * 6  # needs more than nonmono before
    assert _switches([1, 9, 9, 9, 9, 9, 9], 5) == [False] * 6 + [True]


def test_after_the_switch_it_keeps_the_mean_of_the_iterates():
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = NTASGD([p], lr=1.0, weight_decay=0.0, nonmono=1)
    p.grad = torch.ones(1)  # every step: p -= 1
    optimizer.step()
    assert optimizer.averages() == []  # plain SGD before the switch
    for epoch, loss in enumerate([2.0, 1.0, 3.0]):
        optimizer.observe(loss, epoch)
    assert optimizer.switched_at == 2
    for _ in range(3):
        optimizer.step()  # p: -2, -3, -4
    ((_, mean),) = optimizer.averages()
    assert p.item() == -4.0 and mean.item() == pytest.approx(-3.0)


def test_a_saved_state_that_is_not_nt_asgds_is_refused():
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = NTASGD([p], nonmono=1)
    state = optimizer.state_dict()
    state["nt_asgd"] = {"history": ["os.system"], "switched_at": None, "averaged_steps": 0}
    with pytest.raises(ValueError, match="history is not a list of losses"):
        optimizer.load_state_dict(state)
    state["nt_asgd"] = {"history": [1.0], "switched_at": 0, "averaged_steps": 1}
    with pytest.raises(ValueError, match="a mean is missing"):
        optimizer.load_state_dict(state)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "words"
    root.mkdir()
    words = [f"w{i}" for i in range(20)]
    for split, lines, seed in (("train", 300, 0), ("valid", 60, 1), ("test", 60, 2)):
        r = random.Random(seed)
        text = "".join(" ".join(r.choices(words, k=8)) + "\n" for _ in range(lines))
        (root / f"{split}.txt").write_text(text)
    return root


def _args(corpus: Path) -> list[str]:
    # the published recipe's regularisers and optimizer, on a tiny corpus and network
    return [
        "experiment=awd_wikitext2",
        f"data.dir={corpus}",
        "data.batch_size=8",
        "data.seq_len=10",
        "data.eval_batch_size=4",
        "data.seq_len_jitter=0",  # a fixed number of steps an epoch, to stop in a chosen one
        "model.embedding_dim=8",
        "model.hidden_size=8",
        "model.hidden_sizes=[16,16,8]",
        "optimizer.lr=5",
        "optimizer.nonmono=1",
        "trainer.max_epochs=6",
        "logger=csv",
        *QUIET,
    ]


def _asgd(run: Path) -> list[float]:
    with open(run / "metrics.csv") as file:
        return [float(row["train/asgd"]) for row in csv.DictReader(file) if row["train/asgd"]]


def _summary(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_evaluation_and_checkpoints_use_the_averages_and_a_resumed_run_switches_alike(
    cli, tmp_path, corpus
):
    full = cli("train.py", *_args(corpus), "hydra.run.dir=full")
    assert full.status == 0, full.stderr
    switched = _asgd(tmp_path / "full")
    assert 0 in switched and 1 in switched  # it switched within the run
    switch_epoch = switched.index(1.0)
    assert f"at epoch {switch_epoch}, averaging from now on" in full.stdout

    # last.ckpt: the means as its weights, the training weights beside them
    checkpoint = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")
    state = checkpoint["optimizer_states"][0]["nt_asgd"]
    assert state["switched_at"] == switch_epoch
    training = checkpoint["seqlab"][TRAINING_WEIGHTS]
    name = "net.rnns.0.weight_hh_l0"
    assert not torch.equal(checkpoint["state_dict"][name], training[name])
    # eval.py reads the means: the last validation's loss, which was measured on them
    shown = cli("eval.py", "ckpt_path=full/checkpoints/last.ckpt")
    assert shown.status == 0, shown.stderr
    found = dict(re.findall(r"(\w+/\w+)\s+│\s+([\d.]+)", shown.stdout))
    final = _summary(tmp_path / "full")["final"]
    assert float(found["val/loss"]) == pytest.approx(final["val/loss"], rel=1e-5)

    # stopped in the epoch after the switch's, resumed: the same switch, the same end
    steps = checkpoint["global_step"] // 6
    stop = [
        "+callbacks.stop._target_=signal_at_step.SignalAtStep",
        f"+callbacks.stop.step={steps * (switch_epoch + 1) + steps // 2}",
    ]
    stopped = cli("train.py", *_args(corpus), *stop, "hydra.run.dir=run")
    assert stopped.status == 130, stopped.stderr
    resumed = cli("train.py", *_args(corpus), "resume=run")
    assert resumed.status == 0, resumed.stderr
    assert _asgd(tmp_path / "run") == switched
    expected, got = _summary(tmp_path / "full"), _summary(tmp_path / "run")
    for key in ("epochs", "global_step", "final", "best"):
        assert got[key] == expected[key], key
