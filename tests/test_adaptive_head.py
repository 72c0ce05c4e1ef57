"""model.head=adaptive on a word corpus, through the real conf/: training, perplexity, the
checkpoint's tools (eval, generate, predict) and the wikitext2_adaptive recipe."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import ClassVar

import pytest
import pytorch_lightning as pl
import torch
from conftest import QUIET, compose_train
from state_probe import StateProbe
from torch.nn import functional as F

from seqlab.checkpoint import datamodule_from, load_checkpoint, module_from
from seqlab.metrics import VAL_LOSS, VAL_PPL
from seqlab.train import train

# 24 words drawn by a Zipf law; each word's successor is the next word in the list
WORDS = [f"w{i}" for i in range(24)]


def _lines(n: int, seed: int) -> str:
    r = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    lines = []
    for _ in range(n):
        keys = r.choices(range(len(WORDS)), weights, k=r.randint(1, 4))
        lines.append(" ".join(f"{WORDS[k]} {WORDS[(k + 1) % len(WORDS)]}" for k in keys))
    return "\n".join(lines) + "\n"


class Evaluations(pl.Callback):
    """val/loss and val/ppl of every validation after the sanity check."""

    seen: ClassVar[list[tuple[float, float]]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            Evaluations.seen.append((metrics[VAL_LOSS].item(), metrics[VAL_PPL].item()))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir: an LSTM with an adaptive head (shortlist 4, clusters of 8 and 13 words),
    three epochs on the Zipf corpus."""
    root = tmp_path_factory.mktemp("adaptive")
    corpus = root / "words"
    corpus.mkdir()
    for split, n, seed in (("train", 600, 0), ("valid", 80, 1), ("test", 80, 2)):
        (corpus / f"{split}.txt").write_text(_lines(n, seed))
    Evaluations.seen = []
    train(
        compose_train(
            root / "run",
            *QUIET,
            "data=corpus",
            f"data.dir={corpus}",
            "data.seq_len=9",
            "data.batch_size=4",
            "data.eval_batch_size=3",
            "model=lstm",
            "model.encoding=embedding",
            "model.hidden_size=32",
            "model.head=adaptive",
            "model.cutoffs=[4,12]",
            "trainer.max_epochs=3",
            "optimized_metric=val/ppl",
            "+callbacks.evaluations._target_=test_adaptive_head.Evaluations",
        )
    )
    return root / "run"


def test_validation_perplexity_is_exp_of_its_loss_and_falls(trained):
    seen = Evaluations.seen

    assert len(seen) == 3
    for loss, ppl in seen:
        assert ppl == pytest.approx(math.exp(loss), rel=1e-6)
    perplexities = [ppl for _, ppl in seen]
    assert perplexities == sorted(perplexities, reverse=True)
    assert perplexities[-1] < len(WORDS) / 2  # a successor is certain half of the time


def test_the_logged_perplexity_is_every_valid_words_log_probability_by_the_full_softmax(trained):
    summary = json.loads((trained / "metrics.json").read_text())
    checkpoint = load_checkpoint(str(trained / "checkpoints" / "last.ckpt"))
    module = module_from(checkpoint, ValueError)
    data = datamodule_from(checkpoint, ValueError)

    # by hand: 3 streams over the valid split, the state carried, every target scored once,
    # each from the whole vocabulary's log-probabilities (the loss computed the targets' only)
    val = data.splits["val"]
    streams = val[: len(val) // 3 * 3].view(3, -1).long()
    with torch.no_grad():
        log_probs = module.net.scores(module.net(streams[:, :-1])[0])  # (3, T, V)
    nll = F.nll_loss(log_probs.reshape(-1, log_probs.size(-1)), streams[:, 1:].reshape(-1))
    assert summary["final"]["val/ppl"] == pytest.approx(math.exp(nll.item()), rel=1e-5)
    assert checkpoint["hyper_parameters"]["head"] == "adaptive"
    assert checkpoint["hyper_parameters"]["vocab"]["by_count"] is True


def test_eval_on_its_checkpoint_gives_the_logged_perplexity(cli, trained):
    summary = json.loads((trained / "metrics.json").read_text())

    shown = cli("eval.py", f"ckpt_path={trained}/checkpoints/last.ckpt")

    assert shown.status == 0, shown.stderr
    found = dict(re.findall(r"(\w+/\w+)\s+│\s+([\d.]+)", shown.stdout))
    assert float(found["val/ppl"]) == pytest.approx(summary["final"]["val/ppl"], rel=1e-5)
    assert float(found["val/ppl"]) == pytest.approx(math.exp(float(found["val/loss"])), rel=1e-5)
    assert 1 < float(found["test/ppl"]) < len(WORDS)


def test_generate_and_predict_read_the_adaptive_heads_distribution(cli, trained):
    ckpt = f"ckpt_path={trained}/checkpoints/last.ckpt"

    written = cli("generate.py", ckpt, "prompt=w0 w1 w5", "length=20", "greedy=true")
    predicted = cli("predict.py", ckpt, "text=w0 w1 w2 w3 w7")

    assert written.status == 0, written.stderr
    tokens = written.stdout.removesuffix("\n").replace("\n", " <eos> ").split()
    assert tokens[:3] == ["w0", "w1", "w5"] and len(tokens) == 3 + 20
    assert set(tokens) <= {*WORDS, "<eos>"}
    assert tokens[3] == "w6"  # a word's successor, the most likely next word after it
    assert predicted.status == 0, predicted.stderr
    text, after = predicted.stdout.strip().split("\t")
    assert text == "w0 w1 w2 w3 w7" and after.split()[0] == "w1" and after.split()[-1] == "w8"


def test_the_wikitext2_adaptive_recipe_is_wikitext2_with_the_adaptive_head(tmp_path):
    plain = compose_train(tmp_path, "experiment=wikitext2")
    adaptive = compose_train(tmp_path, "experiment=wikitext2_adaptive")

    assert (adaptive.model.head, adaptive.model.cutoffs) == ("adaptive", [2000, 10000])
    changed = {k for k in plain.model if plain.model[k] != adaptive.model[k]}
    assert changed == {"head", "cutoffs"}
    for group in ("data", "optimizer", "scheduler", "trainer"):
        assert plain[group] == adaptive[group]


def test_the_wikitext2_adaptive_recipe_trains_on_wikitext2(make_cfg):
    result = train(
        make_cfg(
            "experiment=wikitext2_adaptive",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=2",
            "+callbacks.probe._target_=state_probe.StateProbe",
            bare=True,
        )
    )
    softmax = StateProbe.latest.module.net.head.softmax

    assert softmax.cutoffs == [2000, 10000, 33_278]
    assert [down.out_features for down, _ in softmax.tail] == [50, 12]
    assert result.final["val/ppl"] == pytest.approx(math.exp(result.final["val/loss"]))
