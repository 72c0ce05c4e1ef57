"""Stateful truncated BPTT: the state carried, detached and resumed; perplexity; generation."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from pathlib import Path
from typing import ClassVar

import pytest
import pytorch_lightning as pl
import torch
from conftest import QUIET
from state_probe import StateProbe
from torch.nn import functional as F

from seqlab.checkpoint import datamodule_from, load_checkpoint, module_from
from seqlab.train import train

WORDS = ["to", "be", "or", "not", "that", "is", "the", "question"]


def _write(root: Path, **splits: str) -> Path:
    root.mkdir(exist_ok=True)
    for name, text in splits.items():
        (root / f"{name}.txt").write_text(text)
    return root


@pytest.fixture
def memory_corpus(tmp_path: Path) -> Path:
    """Lines "A 2 1 a" / "B 2 1 b": the last word repeats the first, 3 steps back."""

    def lines(n: int, seed: int) -> str:
        keys = random.Random(seed).choices("AB", k=n)
        return "".join(f"{k} 2 1 {k.lower()}\n" for k in keys)

    return _write(tmp_path / "memory", train=lines(600, 0), valid=lines(150, 1))


@pytest.fixture
def word_corpus(tmp_path: Path) -> Path:
    def lines(n: int, seed: int) -> str:
        r = random.Random(seed)
        return "".join(" ".join(r.choices(WORDS, k=r.randint(2, 9))) + "\n" for _ in range(n))

    return _write(tmp_path / "words", train=lines(800, 0), valid=lines(80, 1), test=lines(80, 2))


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


LSTM = ["model=lstm", "model.encoding=embedding", "model.hidden_size=32"]


@pytest.mark.parametrize(("batching", "learns"), [("stream", True), ("windows", False)])
def test_a_word_seq_len_steps_back_is_learned_only_with_the_state_carried(
    make_cfg, tmp_path, memory_corpus, batching, learns
):
    # seq_len 2: no batch holds both "A" and the "a" it asks for; only the carried state does
    train(
        make_cfg(
            "data=corpus",
            f"data.dir={memory_corpus}",
            f"data.batching={batching}",
            "data.seq_len=2",
            "data.batch_size=8",
            "data.eval_batch_size=4",
            *LSTM,
            "trainer.max_epochs=6",
            bare=True,
        )
    )
    loss = _summary(tmp_path / "run")["best"]["val/loss"]
    # five tokens a line: the key is a coin toss (ln 2), the rest follows from it: 0.139 a token;
    # without the key its echo is a coin toss too: 0.277
    if learns:
        assert loss < 0.17
    else:
        assert loss > 0.25


def test_each_batch_starts_from_the_last_batchs_final_state_detached(make_cfg, word_corpus):
    cfg = make_cfg(
        "data=corpus",
        f"data.dir={word_corpus}",
        "data.seq_len=7",
        "data.batch_size=4",
        *LSTM,
        "trainer.max_epochs=2",
        "+trainer.num_sanity_val_steps=0",
        "+callbacks.probe._target_=state_probe.StateProbe",
    )
    train(cfg)
    probe = StateProbe.latest

    # runs of consecutive calls of one stage: an epoch's training, then its validation
    runs: list[list] = []
    for call in probe.calls:
        if runs and runs[-1][0][0] == call[0]:
            runs[-1].append(call)
        else:
            runs.append([call])
    assert [run[0][0] for run in runs] == ["train", "eval", "train", "eval"]
    for run in runs:
        assert run[0][1] is None  # each epoch and each evaluation starts from zero
        for (_, _, ended), (_, started, _) in itertools.pairwise(run):
            for a, b in zip(ended, started, strict=True):
                assert torch.equal(a, b)  # the same values: the state is carried
                assert b.grad_fn is None and not b.requires_grad  # and cut from its history
    # the backward graph of a step is as large at the last step as at the first
    full = probe.graph_sizes[:-1]  # the last batch of an epoch may be shorter
    assert len(set(full[: len(full) // 2 - 1])) == 1


def test_perplexity_is_exp_of_the_mean_loss_over_every_token_of_the_streams(
    cli, tmp_path, word_corpus
):
    done = cli(
        "train.py",
        "data=corpus",
        f"data.dir={word_corpus}",
        "data.seq_len=9",
        "data.batch_size=4",
        "data.eval_batch_size=3",
        *LSTM,
        "trainer.max_epochs=1",
        "optimized_metric=val/ppl",
        *QUIET,
        "hydra.run.dir=run",
    )
    assert done.status == 0, done.stderr
    summary = _summary(tmp_path / "run")
    checkpoint = load_checkpoint(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    module = module_from(checkpoint, ValueError)
    data = datamodule_from(checkpoint, ValueError)

    # by hand: 3 streams over the valid split, the state carried, every target scored once
    val = data.splits["val"]
    streams = val[: len(val) // 3 * 3].view(3, -1).long()
    with torch.no_grad():
        scores, _ = module.net(streams[:, :-1])  # one pass == batches with the state carried
    nll = F.cross_entropy(scores.reshape(-1, scores.size(-1)), streams[:, 1:].reshape(-1))
    assert summary["final"]["val/ppl"] == pytest.approx(math.exp(nll.item()), rel=1e-5)
    assert summary["final"]["val/ppl"] == pytest.approx(math.exp(summary["final"]["val/loss"]))
    assert "val/bpc" not in summary["final"] and "train/ppl" in summary["final"]

    shown = cli("eval.py", "ckpt_path=run/checkpoints/last.ckpt")
    assert shown.status == 0, shown.stderr
    found = dict(re.findall(r"(\w+/\w+)\s+│\s+([\d.]+)", shown.stdout))
    assert float(found["val/ppl"]) == pytest.approx(summary["final"]["val/ppl"], rel=1e-5)
    assert float(found["test/ppl"]) > 1


def test_generate_continues_a_prompt_of_words(cli, tmp_path, word_corpus):
    args = ["data=corpus", f"data.dir={word_corpus}", "data.seq_len=9", *LSTM, *QUIET]
    assert cli("train.py", *args, "trainer.max_epochs=1", "hydra.run.dir=run").status == 0

    shown = cli(
        "generate.py", "ckpt_path=run/checkpoints/last.ckpt", "prompt=to be or", "length=12"
    )

    assert shown.status == 0, shown.stderr
    text = shown.stdout.rstrip("\n")
    assert text.startswith("to be or ")
    assert "<eos>" not in text  # a line's end is written as one
    tokens = text.replace("\n", " <eos> ").split()
    assert len(tokens) == 3 + 12
    assert set(tokens) <= {*WORDS, "<eos>"}


def test_a_jittered_stateful_run_stopped_mid_epoch_or_at_an_epochs_end_resumes_as_if_never_stopped(
    cli, tmp_path, word_corpus
):
    # with AWD's length jitter an epoch has no len(): Lightning reads a batch ahead of the loop,
    # and that batch must not count as trained on when the run stops
    args = [
        "data=corpus",
        f"data.dir={word_corpus}",
        "data.seq_len=5",
        "data.seq_len_jitter=2",
        "data.batch_size=4",
        *LSTM,
        "model.dropout=0.3",  # dropout draws from the RNG: it must be restored too
        "model.num_layers=2",
        "trainer.max_epochs=2",
        *QUIET,
    ]
    assert cli("train.py", *args, "hydra.run.dir=full").status == 0
    expected = _summary(tmp_path / "full")
    stop = ["+callbacks.stop._target_=signal_at_step.SignalAtStep", "+callbacks.stop.step=150"]
    stopped = cli("train.py", *args, *stop, "hydra.run.dir=run")
    assert stopped.status == 130, stopped.stderr
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 151  # mid-epoch: about 230 steps an epoch
    h, c = last["seqlab"]["carried_state"]
    assert h.shape == c.shape == (1, 2, 4, 32)  # (ranks, layers, streams, units)

    resumed = cli("train.py", *args, "resume=run")

    assert resumed.status == 0, resumed.stderr
    got = _summary(tmp_path / "run")
    for key in ("epochs", "global_step", "final", "best"):
        assert got[key] == expected[key], key

    # stopped at the first epoch's end (a run of one epoch), then trained on for a second
    assert cli("train.py", *args, "trainer.max_epochs=1", "hydra.run.dir=one").status == 0
    more = cli("train.py", *args, "resume=one")
    assert more.status == 0, more.stderr
    got = _summary(tmp_path / "one")
    for key in ("epochs", "global_step", "final", "best"):
        assert got[key] == expected[key], key


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_every_cell_carries_its_state_through_a_stack_of_layers(make_cfg, word_corpus, cell):
    train(
        make_cfg(
            "data=corpus",
            f"data.dir={word_corpus}",
            "data.seq_len=20",
            f"model={cell}",
            "model.num_layers=2",
            "model.encoding=embedding",
            "trainer.max_epochs=1",
            "+callbacks.probe._target_=state_probe.StateProbe",
            bare=True,
        )
    )
    calls = [c for c in StateProbe.latest.calls if c[0] == "train"]

    assert calls[0][1] is None
    for (_, _, ended), (_, started, _) in itertools.pairwise(calls):
        ended = ended if isinstance(ended, tuple) else (ended,)
        started = started if isinstance(started, tuple) else (started,)
        assert len(started) == (2 if cell == "lstm" else 1)
        assert all(
            torch.equal(a, b) and b.shape[0] == 2 for a, b in zip(ended, started, strict=True)
        )


def test_a_jittered_batch_steps_with_the_learning_rate_scaled_by_its_length(make_cfg, word_corpus):
    train(
        make_cfg(
            "data=corpus",
            f"data.dir={word_corpus}",
            "data.seq_len=12",
            "data.seq_len_jitter=3",
            *LSTM,
            "trainer.max_epochs=1",
            "+callbacks.probe._target_=state_probe.StateProbe",
            bare=True,
        )
    )
    lrs = StateProbe.latest.lrs
    base = lrs[0][2]  # the configured learning rate, as it is after every step

    assert len({scale for scale, _, _ in lrs}) > 3  # the lengths vary
    for scale, used, after in lrs:
        assert used == pytest.approx(base * scale) and after == base


def test_resuming_with_a_carried_state_that_does_not_fit_changes_nothing(
    cli, tmp_path, word_corpus
):
    from conftest import snapshot

    args = ["data=corpus", f"data.dir={word_corpus}", "data.seq_len=9", *LSTM, *QUIET]
    stop = ["+callbacks.stop._target_=signal_at_step.SignalAtStep", "+callbacks.stop.step=20"]
    assert cli("train.py", *args, *stop, "hydra.run.dir=run").status == 130
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["seqlab"]["carried_state"] = checkpoint["seqlab"]["carried_state"][:1]  # no c
    torch.save(checkpoint, last)
    log = tmp_path / "run" / "train.log"
    before, logged = snapshot(tmp_path), log.read_text()

    done = cli("train.py", *args, "resume=run")

    assert done.lines == [
        "error: resume='run' is invalid: its carried state (1, 20, 32) does not fit this model "
        "(2 x (layers 1, streams, units 32))"
    ]
    # the run's log gains the line naming the corpus files read; nothing else changes
    assert log.read_text().startswith(logged)
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k != "run/train.log"} == {
        k: v for k, v in before.items() if k != "run/train.log"
    }


def test_experiment_wikitext2_is_word_language_models_default_recipe(tmp_path):
    from conftest import compose_train

    cfg = compose_train(tmp_path, "experiment=wikitext2")

    assert (cfg.data.seq_len, cfg.data.batch_size, cfg.data.eval_batch_size) == (35, 20, 10)
    assert cfg.data.batching == "stream" and cfg.data.level == "word"
    model = cfg.model
    assert (model.cell, model.embedding_dim, model.hidden_size, model.num_layers) == (
        "lstm",
        200,
        200,
        2,
    )
    assert (model.dropout, model.init_range, model.tie_weights) == (0.2, 0.1, False)
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.lr == 20
    assert cfg.optimizer.momentum == 0 and cfg.optimizer.weight_decay == 0
    assert cfg.scheduler._target_ == "torch.optim.lr_scheduler.ReduceLROnPlateau"
    assert (cfg.scheduler.factor, cfg.scheduler.patience, cfg.scheduler.threshold) == (0.25, 0, 0)
    assert cfg.scheduler.monitor == "val/loss"
    assert (cfg.trainer.max_epochs, cfg.trainer.gradient_clip_val) == (40, 0.25)
    assert cfg.optimized_metric == "val/ppl"


def test_the_tied_recipe_trains_with_one_matrix_for_embedding_and_output(make_cfg):
    train(
        make_cfg(
            "experiment=wikitext2_tied",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=2",
            "+callbacks.probe._target_=state_probe.StateProbe",
            bare=True,
        )
    )
    net = StateProbe.latest.module.net

    assert net.head[-1].weight is net.embedding.weight
    assert net.embedding.weight.shape == (33_278, 200)


class LossTrace(pl.Callback):
    losses: ClassVar[list[float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        LossTrace.losses.append(outputs["loss"].item())


def test_the_first_steps_equal_word_language_models_loop_loss_for_loss(make_cfg, word_corpus):
    from torch import nn

    from seqlab.data import CorpusDataModule

    LossTrace.losses = []
    recipe = ["model.embedding_dim=32", "model.hidden_size=32", "model.dropout=0.0"]
    train(
        make_cfg(
            "experiment=wikitext2",
            f"data.dir={word_corpus}",
            "data.seq_len=7",
            "data.batch_size=4",
            *recipe,
            "optimizer.lr=2",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=6",
            "+callbacks.trace._target_=test_language_model.LossTrace",
            bare=True,
        )
    )

    # word_language_model's main.py: seq-first batches, repackage_hidden, clip, p -= lr * grad
    torch.manual_seed(0)
    ids = CorpusDataModule(dir=str(word_corpus), seq_len=7, batch_size=4).splits["train"].long()
    streams = ids[: len(ids) // 4 * 4].view(4, -1).t()  # (N, 4)
    vocab = int(ids.max()) + 1
    encoder, rnn, decoder = nn.Embedding(vocab, 32), nn.LSTM(32, 32, 2), nn.Linear(32, vocab)
    for weight in (encoder.weight, decoder.weight):
        nn.init.uniform_(weight, -0.1, 0.1)
    nn.init.zeros_(decoder.bias)
    parameters = [*encoder.parameters(), *rnn.parameters(), *decoder.parameters()]
    hidden, losses = None, []
    for i in range(0, 6 * 7, 7):
        data, targets = streams[i : i + 7], streams[i + 1 : i + 8]
        hidden = None if hidden is None else tuple(h.detach() for h in hidden)
        output, hidden = rnn(encoder(data), hidden)
        loss = F.cross_entropy(decoder(output).reshape(-1, vocab), targets.reshape(-1))
        for p in parameters:
            p.grad = None
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, 0.25)
        with torch.no_grad():
            for p in parameters:
                p.add_(p.grad, alpha=-2)
        losses.append(loss.item())

    assert LossTrace.losses == pytest.approx(losses, rel=1e-5)
